// Unit-normalise a feature map over its channels: y[n, c, …] = x[n, c, …] / (‖x[n, :, …]‖₂ + eps),
// LPIPS' normalize_tensor (richzhang/PerceptualSimilarity; the copy in REPA-E's loss/lpips.py), eps
// added to the norm, not under the root. One fused op rather than sqrt(sum(x²)) composed: the
// composed form's backward is 0·∞ = NaN wherever every channel is 0, which happens on post-ReLU
// features of a small network; here the gradient there is g / eps (the second term vanishes with x):
//   dx = g / (n + eps) − x · ⟨g, x⟩ / (n · (n + eps)²),   n = ‖x‖ over channels (term dropped at n = 0).
// Input (N, C, *), channels on axis 1. Not exported from ops/index.ts; import it from this file.
import { uninit, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { record } from '../tape.ts';

export function unitNormalize(x: Tensor, eps = 1e-10): Tensor {
  if (x.ndim < 2) throw new Error(`unitNormalize: expected (N, C, *), got ${fmtShape(x.shape)}`);
  const n = x.shape[0], c = x.shape[1], inner = n * c === 0 ? 0 : x.size / (n * c);
  const norms = new Float64Array(n * inner); // ‖x‖ per (sample, position)
  const xs = x.data;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const o = (b * c + ch) * inner, q = b * inner;
      for (let i = 0; i < inner; i++) norms[q + i] += xs[o + i] * xs[o + i];
    }
  }
  for (let i = 0; i < norms.length; i++) norms[i] = Math.sqrt(norms[i]);
  const out = uninit(x.shape, x.dtype);
  const ys = out.data;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const o = (b * c + ch) * inner, q = b * inner;
      for (let i = 0; i < inner; i++) ys[o + i] = xs[o + i] / (norms[q + i] + eps);
    }
  }
  return record('unitNormalize', [x], out, (g) => {
    const gs = g.data;
    const dots = new Float64Array(n * inner); // ⟨g, x⟩ per (sample, position)
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c; ch++) {
        const o = (b * c + ch) * inner, q = b * inner;
        for (let i = 0; i < inner; i++) dots[q + i] += gs[o + i] * xs[o + i];
      }
    }
    const dx = uninit(x.shape, x.dtype);
    const ds = dx.data;
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c; ch++) {
        const o = (b * c + ch) * inner, q = b * inner;
        for (let i = 0; i < inner; i++) {
          const nr = norms[q + i], d = nr + eps;
          ds[o + i] = gs[o + i] / d - (nr > 0 ? (xs[o + i] * dots[q + i]) / (nr * d * d) : 0);
        }
      }
    }
    return [dx];
  });
}
