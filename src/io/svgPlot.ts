// Line plots as standalone SVG (no dependencies): one or more series over a shared x axis, with
// axes, ticks and a legend, and an optional shaded band per series (e.g. the range over seeds).
// Enough for loss curves and metric-versus-step plots in docs/.
import { writeFileAtomic } from './atomic.ts';

export interface Series {
  name: string; x: number[]; y: number[]; color?: string;
  /** Lower and upper edge of a shaded band at each x (both or neither). */
  lo?: number[]; hi?: number[];
  /** Draw a dot at every point (for sparse series, where the line's corners are the data). */
  markers?: boolean;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

function ticks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo || 1;
  const step = 10 ** Math.floor(Math.log10(span / n));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= n) ?? step * 10;
  const out: number[] = [];
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + 1e-12; v += nice) out.push(+v.toPrecision(6));
  return out;
}

export function linePlotSvg(series: Series[], o: { title: string; xLabel: string; yLabel: string; width?: number; height?: number; logY?: boolean }): string {
  const W = o.width ?? 640, H = o.height ?? 360, L = 64, R = 16, T = 32, B = 48;
  const fy = (v: number) => (o.logY ? Math.log10(v) : v);
  const xs = series.flatMap((s) => s.x);
  const ys = series.flatMap((s) => [...s.y, ...(s.lo ?? []), ...(s.hi ?? [])].map(fy)).filter(Number.isFinite);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [yMin, yMax] = [Math.min(...ys), Math.max(...ys)], pad = (yMax - yMin) * 0.04; // the extremes stay off the frame
  const [y0, y1] = [!o.logY && yMin >= 0 ? Math.max(0, yMin - pad) : yMin - pad, yMax + pad];
  const px = (x: number) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R);
  const py = (y: number) => H - B - ((fy(y) - y0) / (y1 - y0 || 1)) * (H - T - B);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${o.title}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
  ];
  for (const t of ticks(x0, x1)) parts.push(`<text x="${px(t)}" y="${H - B + 16}" text-anchor="middle">${t}</text>`);
  for (const t of ticks(y0, y1)) {
    const v = o.logY ? 10 ** t : t;
    parts.push(`<text x="${L - 6}" y="${py(v) + 4}" text-anchor="end">${+v.toPrecision(3)}</text><line x1="${L}" x2="${W - R}" y1="${py(v)}" y2="${py(v)}" stroke="#ddd"/>`);
  }
  parts.push(`<text x="${W / 2}" y="${H - 10}" text-anchor="middle">${o.xLabel}</text>`);
  parts.push(`<text transform="translate(16 ${H / 2}) rotate(-90)" text-anchor="middle">${o.yLabel}</text>`);
  // The legend's left edge leaves room for its longest name (≈ 7 px a character at 12 px sans-serif).
  const legendX = W - R - Math.max(150, 18 + 7 * Math.max(...series.map((s) => s.name.length)));
  series.forEach((s, i) => {
    const c = s.color ?? PALETTE[i % PALETTE.length];
    if (s.lo && s.hi) {
      const edge = (v: number[], idx: number[]) => idx.map((j) => `${px(s.x[j]).toFixed(1)},${py(v[j]).toFixed(1)}`);
      const fwd = s.x.map((_, j) => j);
      parts.push(`<polygon fill="${c}" fill-opacity="0.15" stroke="none" points="${[...edge(s.hi, fwd), ...edge(s.lo, [...fwd].reverse())].join(' ')}"/>`);
    }
    const pts = s.x.map((x, j) => `${px(x).toFixed(1)},${py(s.y[j]).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${pts}"/>`);
    if (s.markers) for (let j = 0; j < s.x.length; j++) parts.push(`<circle cx="${px(s.x[j]).toFixed(1)}" cy="${py(s.y[j]).toFixed(1)}" r="3" fill="${c}"/>`);
    parts.push(`<rect x="${legendX}" y="${T + 4 + 16 * i}" width="12" height="3" fill="${c}"/><text x="${legendX + 18}" y="${T + 9 + 16 * i}">${s.name}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export function writeLinePlot(file: string, series: Series[], o: Parameters<typeof linePlotSvg>[1]): void {
  writeFileAtomic(file, linePlotSvg(series, o));
}
