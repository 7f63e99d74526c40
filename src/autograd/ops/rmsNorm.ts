// RMSNorm over the last dim (Zhang & Sennrich 2019, arXiv 1910.07467; LLaMA's LlamaRMSNorm, the
// norm of DDT's blocks and q/k norms, MCG-NJU/DDT src/models/denoiser/decoupled_improved_dit.py
// class RMSNorm): y = w ⊙ x · r,  r = 1/√(mean(x²) + eps), computed in float64 per row.
// Backward, with x̂ = x·r and u = g ⊙ w:  dx = r·(u − x̂·mean(u ⊙ x̂)),  dw = Σ_rows g ⊙ x̂.
// One op rather than pow/mean/rsqrt composed (one pass, no (rows, C) temporaries).
// Not here: the Module that owns the weight (nn/rmsNorm.ts); LayerNorm (norm.ts).
import { uninit, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { record } from '../tape.ts';
import { isMetaArray, metaCount } from '../../kernels/meta.ts';

/** x (..., C); weight (C) or null (no scale) -> (..., C). */
export function rmsNorm(x: Tensor, weight: Tensor | null = null, eps = 1e-6): Tensor {
  if (x.ndim === 0) throw new Error('rmsNorm: x must have at least one dim');
  const cols = x.shape[x.ndim - 1];
  if (weight !== null) {
    if (weight.ndim !== 1 || weight.size !== cols) throw new Error(`rmsNorm: weight must be (${cols}) for x ${fmtShape(x.shape)}, got ${fmtShape(weight.shape)}`);
    if (weight.dtype !== x.dtype) throw new Error(`rmsNorm: weight dtype ${weight.dtype} does not match x ${x.dtype}`);
  }
  if (!(eps >= 0)) throw new Error(`rmsNorm: eps must be ≥ 0, got ${eps}`);
  const rows = cols === 0 ? 0 : x.size / cols;
  if (isMetaArray(x.data)) { // shape-only (kernels/meta.ts): count, do not walk
    metaCount('elementwise', 4 * x.size, 2 * x.size);
    return record('rmsNorm', [x, weight], uninit(x.shape, x.dtype), () => {
      metaCount('elementwise', 8 * x.size, 3 * x.size);
      return [x.requiresGrad ? uninit(x.shape, x.dtype) : null, weight?.requiresGrad ? uninit([cols], x.dtype) : null];
    });
  }
  const xs = x.data, w = weight?.data;
  const rstd = new Float64Array(rows); // (rows)
  const out = uninit(x.shape, x.dtype);
  const ys = out.data;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let ss = 0;
    for (let j = 0; j < cols; j++) ss += xs[o + j] * xs[o + j];
    const s = 1 / Math.sqrt(ss / cols + eps);
    rstd[r] = s;
    for (let j = 0; j < cols; j++) ys[o + j] = xs[o + j] * s * (w ? w[j] : 1);
  }
  return record('rmsNorm', [x, weight], out, (g) => {
    const gs = g.data;
    const dx = x.requiresGrad ? uninit(x.shape, x.dtype) : null;
    const dwAcc = weight?.requiresGrad ? new Float64Array(cols) : null;
    for (let r = 0; r < rows; r++) {
      const o = r * cols, s = rstd[r];
      let dot = 0;
      for (let j = 0; j < cols; j++) {
        const xh = xs[o + j] * s;
        dot += gs[o + j] * (w ? w[j] : 1) * xh;
        if (dwAcc) dwAcc[j] += gs[o + j] * xh;
      }
      if (dx) {
        const m = dot / cols, ds = dx.data;
        for (let j = 0; j < cols; j++) ds[o + j] = s * (gs[o + j] * (w ? w[j] : 1) - xs[o + j] * s * m);
      }
    }
    let dw: Tensor | null = null;
    if (dwAcc) { dw = uninit([cols], x.dtype); dw.data.set(dwAcc); }
    return [dx, dw];
  });
}
