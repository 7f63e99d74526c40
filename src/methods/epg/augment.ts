// EPG's two views for the contrastive term (methods-b §7, step 1: "two augmented views"), small and
// seeded so both engines and a resume see the same pixels: per image, a random square crop of side
// a·H (a ~ U(crop_min, 1)) at a uniform offset, resized back to H×W by bilinear sampling (pixel
// centres, edges clamped), then a horizontal flip with probability ½. Every draw comes from the
// given Rng, four numbers per image in the order (a, offset y, offset x, flip). The official recipe
// (random-resized-crop and colour jitter at 224 px) is larger; colour jitter is left out here
// (one-channel 32 px data).
import { fromData, type Tensor } from '../../tensor/tensor.ts';
import type { Rng } from '../../tensor/rng.ts';

/** x (B, C, H, W) → one augmented view (B, C, H, W) of x's dtype, no gradient. */
export function augmentView(x: Tensor, rng: Rng, cropMin: number): Tensor {
  if (x.ndim !== 4 || x.shape[2] !== x.shape[3]) throw new Error(`epg augmentView: expected square images (B, C, H, H), got [${x.shape.join(', ')}]`);
  if (!(cropMin > 0 && cropMin <= 1)) throw new Error(`epg.crop_min must be in (0, 1], got ${cropMin}`);
  const [B, C, H] = x.shape, W = H, src = x.data, out = x.dtype === 'float64' ? new Float64Array(B * C * H * W) : new Float32Array(B * C * H * W);
  const u = rng.uniformArray(4 * B);
  for (let b = 0; b < B; b++) {
    const a = cropMin + (1 - cropMin) * u[4 * b], side = a * H;
    const oy = u[4 * b + 1] * (H - side), ox = u[4 * b + 2] * (W - side), flip = u[4 * b + 3] < 0.5;
    for (let c = 0; c < C; c++) {
      const base = (b * C + c) * H * W;
      for (let i = 0; i < H; i++) {
        const sy = Math.min(H - 1, Math.max(0, oy + ((i + 0.5) * side) / H - 0.5));
        const y0 = Math.floor(sy), y1 = Math.min(H - 1, y0 + 1), fy = sy - y0;
        for (let j = 0; j < W; j++) {
          const jj = flip ? W - 1 - j : j;
          const sx = Math.min(W - 1, Math.max(0, ox + ((jj + 0.5) * side) / W - 0.5));
          const x0 = Math.floor(sx), x1 = Math.min(W - 1, x0 + 1), fx = sx - x0;
          const top = src[base + y0 * W + x0] * (1 - fx) + src[base + y0 * W + x1] * fx;
          const bot = src[base + y1 * W + x0] * (1 - fx) + src[base + y1 * W + x1] * fx;
          out[base + i * W + j] = top * (1 - fy) + bot * fy;
        }
      }
    }
  }
  return fromData(out, [B, C, H, W]);
}
