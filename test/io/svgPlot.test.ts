// The SVG line plot: data corners land on the plot frame's corners, a band is one closed polygon
// along hi then back along lo, and the y range includes the band.
import { describe, expect, it } from 'vitest';
import { linePlotSvg } from '../../src/io/svgPlot.ts';

const o = { title: 't', xLabel: 'x', yLabel: 'y', width: 200, height: 100 }; // frame: x 64..184, y 32..52

describe('linePlotSvg', () => {
  it('maps the data range onto the frame', () => {
    const svg = linePlotSvg([{ name: 'a', x: [0, 10], y: [1, 3] }], o);
    expect(svg).toContain('points="64.0,52.0 184.0,32.0"');
    expect(svg).not.toContain('<polygon');
  });
  it('draws a band from hi and back along lo, and scales y to it', () => {
    const svg = linePlotSvg([{ name: 'a', x: [0, 10], y: [1, 2], lo: [0, 1], hi: [2, 4] }], o);
    // y range is [0, 4]: y 1 → 47, 2 → 42, 0 → 52, 4 → 32.
    expect(svg).toContain('points="64.0,47.0 184.0,42.0"');
    expect(svg).toContain('<polygon fill="#1f77b4" fill-opacity="0.15" stroke="none" points="64.0,42.0 184.0,32.0 184.0,47.0 64.0,52.0"/>');
  });
});
