// Rotary position embedding (Su et al., RoFormer, arXiv 2104.09864) in its 2-D axial form as DDT
// uses it (MCG-NJU/DDT src/models/denoiser/decoupled_improved_dit.py: precompute_freqs_cis_2d,
// apply_rotary_emb). rotary(x, angles) rotates each channel pair (2m, 2m+1) of x (B, N, H, d) by
// the angle θ[n, m] of its token: (a, b) ↦ (a cos θ − b sin θ, a sin θ + b cos θ) — multiplication
// by e^{iθ} of the complex number a + ib (torch.view_as_complex reads pairs this way). Its
// backward is the inverse rotation of the gradient. rope2dAngles gives DDT's table: head dim d,
// φ_k = θ_base^(−4k/d) (k < d/4), token (row r, col c) at px = c·scale/(W−1), py = r·scale/(H−1)
// (torch.linspace(0, scale, ·)); pair 2k turns by px·φ_k, pair 2k+1 by py·φ_k.
// Not here: where attention applies it (nn/ropeAttention.ts).
import { uninit, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { record } from '../tape.ts';

/** linspace(0, scale, n) as torch computes it (n = 1: [0]). */
function linspace(scale: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = n === 1 ? 0 : (scale * i) / (n - 1);
  return out;
}

/** DDT's 2-D angle table (H·W, d/2), tokens row-major; d must be a multiple of 4. */
export function rope2dAngles(height: number, width: number, headDim: number, theta = 10000, scale = 16): Float64Array {
  for (const [n, v] of [['height', height], ['width', width], ['headDim', headDim]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`rope2dAngles: ${n} must be a positive integer, got ${v}`);
  }
  if (headDim % 4 !== 0) throw new Error(`rope2dAngles: the head dim ${headDim} must be a multiple of 4 (two axes, pairs of channels)`);
  const q = headDim / 4, half = headDim / 2;
  const freqs = Float64Array.from({ length: q }, (_, k) => 1 / theta ** ((4 * k) / headDim));
  const xs = linspace(scale, width), ys = linspace(scale, height);
  const out = new Float64Array(height * width * half);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const o = (r * width + c) * half;
      for (let k = 0; k < q; k++) {
        out[o + 2 * k] = xs[c] * freqs[k];
        out[o + 2 * k + 1] = ys[r] * freqs[k];
      }
    }
  }
  return out;
}

/** x (B, N, H, d) rotated pairwise by angles (N, d/2) (a constant: no gradient) -> (B, N, H, d). */
export function rotary(x: Tensor, angles: Float64Array): Tensor {
  if (x.ndim !== 4 || x.shape[3] % 2 !== 0) throw new Error(`rotary: x must be (B, N, H, d) with d even, got ${fmtShape(x.shape)}`);
  const [b, n, h, d] = x.shape;
  const half = d / 2;
  if (angles.length !== n * half) throw new Error(`rotary: angles must be (N ${n}, d/2 ${half}) = ${n * half} values, got ${angles.length}`);
  const cos = angles.map(Math.cos), sin = angles.map(Math.sin);
  const turn = (src: ArrayLike<number>, dst: { [i: number]: number }, sign: 1 | -1): void => {
    for (let bi = 0; bi < b; bi++) {
      for (let t = 0; t < n; t++) {
        const a0 = t * half;
        for (let hh = 0; hh < h; hh++) {
          const o = ((bi * n + t) * h + hh) * d;
          for (let m = 0; m < half; m++) {
            const c = cos[a0 + m], s = sign * sin[a0 + m];
            const p = src[o + 2 * m], q = src[o + 2 * m + 1];
            dst[o + 2 * m] = p * c - q * s;
            dst[o + 2 * m + 1] = p * s + q * c;
          }
        }
      }
    }
  };
  const out = uninit(x.shape, x.dtype);
  turn(x.data, out.data, 1);
  return record('rotary', [x], out, (g) => {
    const dx = uninit(x.shape, x.dtype);
    turn(g.data, dx.data, -1);
    return [dx];
  });
}
