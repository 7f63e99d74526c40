// The built-in dataset: procedurally drawn, class-conditional 32×32 RGB images (10 classes of
// shapes with random colour, size, position, rotation and background texture). Sample i depends
// only on (seed, i), so any actor can draw any sample without coordination. Always available:
// it is what `npm start` and most tests use. It is not a benchmark of anything.
import { Rng } from '../tensor/rng.ts';

export const SHAPE_CLASSES = [
  'disc', 'square', 'triangle', 'ring', 'cross', 'horizontal bars', 'vertical bars', 'diamond', 'two dots', 'checker',
] as const;

type Inside = (u: number, v: number) => boolean; // u, v in shape-local coords, roughly [-1, 1]

const SHAPES: Inside[] = [
  (u, v) => u * u + v * v < 1,
  (u, v) => Math.abs(u) < 0.8 && Math.abs(v) < 0.8,
  (u, v) => v > -0.7 && v < 0.9 && Math.abs(u) < (0.9 - v) * 0.6,
  (u, v) => { const r = u * u + v * v; return r < 1 && r > 0.4; },
  (u, v) => (Math.abs(u) < 0.25 && Math.abs(v) < 0.95) || (Math.abs(v) < 0.25 && Math.abs(u) < 0.95),
  (u, v) => Math.abs(u) < 0.95 && Math.abs(v) < 0.95 && Math.floor((v + 1) * 2.5) % 2 === 0,
  (u, v) => Math.abs(u) < 0.95 && Math.abs(v) < 0.95 && Math.floor((u + 1) * 2.5) % 2 === 0,
  (u, v) => Math.abs(u) + Math.abs(v) < 1,
  (u, v) => (u + 0.5) ** 2 + v * v < 0.16 || (u - 0.5) ** 2 + v * v < 0.16,
  (u, v) => Math.abs(u) < 0.9 && Math.abs(v) < 0.9 && (Math.floor((u + 1) * 2) + Math.floor((v + 1) * 2)) % 2 === 0,
];

export interface ImageSet {
  /** (N, C, H, W) in [-1, 1]. */
  images: Float32Array;
  labels: Int32Array;
  count: number;
  channels: number;
  height: number;
  width: number;
}

/** Draw samples [start, start + count) of the built-in set. */
export function makeShapes(count: number, seed: number, start = 0, size = 32): ImageSet {
  const C = 3, H = size, W = size;
  const images = new Float32Array(count * C * H * W);
  const labels = new Int32Array(count);
  const base = new Rng(seed).child('builtin-shapes');
  for (let s = 0; s < count; s++) {
    const idx = start + s;
    const r = base.child(idx);
    const cls = idx % SHAPE_CLASSES.length;
    labels[s] = cls;
    const p = r.uniformArray(12);
    const fg = [p[0], p[1], p[2]].map((x) => 0.35 + 0.65 * x);
    const bg = [p[3], p[4], p[5]].map((x) => 0.25 * x);
    const scale = (0.25 + 0.2 * p[6]) * size;
    const cx = size / 2 + (p[7] - 0.5) * (size - 2 * scale) * 0.9;
    const cy = size / 2 + (p[8] - 0.5) * (size - 2 * scale) * 0.9;
    const th = (p[9] - 0.5) * 0.8; // mild rotation keeps bars horizontal vs vertical distinct
    const texFreq = 0.3 + 0.9 * p[10], texAmp = 0.12 * p[11];
    const noise = r.normalArray(H * W);
    const cos = Math.cos(th), sin = Math.sin(th);
    const inside = SHAPES[cls];
    const off = s * C * H * W;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const dx = (x + 0.5 - cx) / scale, dy = (y + 0.5 - cy) / scale;
        const u = cos * dx + sin * dy, v = -sin * dx + cos * dy;
        const on = inside(u, v);
        const tex = texAmp * Math.sin(texFreq * (x + y)) + 0.03 * noise[y * W + x];
        for (let c = 0; c < C; c++) {
          const val = (on ? fg[c] : bg[c]) + tex;
          images[off + c * H * W + y * W + x] = Math.max(-1, Math.min(1, val * 2 - 1));
        }
      }
    }
  }
  return { images, labels, count, channels: C, height: H, width: W };
}
