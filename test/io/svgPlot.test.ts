// The SVG line plot: the data's x range spans the frame and its y range sits 4 % of itself inside
// the frame (clamped at 0 for non-negative data), a band is one closed polygon along hi then back
// along lo, the y range includes the band, and markers put a dot on every point.
import { describe, expect, it } from 'vitest';
import { linePlotSvg } from '../../src/io/svgPlot.ts';

const o = { title: 't', xLabel: 'x', yLabel: 'y', width: 200, height: 100 }; // frame: x 64..184, y 32..52

describe('linePlotSvg', () => {
  it('maps the data range onto the frame, y with 4 % headroom each side', () => {
    const svg = linePlotSvg([{ name: 'a', x: [0, 10], y: [1, 3] }], o);
    // y range [1 − 0.08, 3 + 0.08]: y 1 → 52 − 20·0.08/2.16 = 51.26, y 3 → 32.74.
    expect(svg).toContain('points="64.0,51.3 184.0,32.7"');
    expect(svg).not.toContain('<polygon');
    expect(svg).not.toContain('<circle');
  });
  it('puts a dot on every point of a series with markers', () => {
    const svg = linePlotSvg([{ name: 'a', x: [0, 5, 10], y: [1, 2, 3], markers: true }], o);
    expect(svg.match(/<circle /g)).toHaveLength(3);
    expect(svg).toContain('<circle cx="124.0" cy="42.0" r="3"');
  });
  it('draws a band from hi and back along lo, and scales y to it', () => {
    const svg = linePlotSvg([{ name: 'a', x: [0, 10], y: [1, 2], lo: [0, 1], hi: [2, 4] }], o);
    // y range is [0, 4 + 0.16] (the headroom below 0 clamped): y 1 → 47.2, 2 → 42.4, 0 → 52, 4 → 32.8.
    expect(svg).toContain('points="64.0,47.2 184.0,42.4"');
    expect(svg).toContain('<polygon fill="#1f77b4" fill-opacity="0.15" stroke="none" points="64.0,42.4 184.0,32.8 184.0,47.2 64.0,52.0"/>');
  });
});
