// Embedding lookup (class labels, tokens) with a scatter-add gradient, and DiT's adaLN modulation
// x * (1 + scale) + shift on the fused kernel. Not here: positional embeddings (fixed tables built
// in models/), timestep embeddings (sinusoids + an MLP), padding_idx or max_norm.
import { empty, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape, sizeOf, type Shape } from '../../tensor/shape.ts';
import { record } from '../tape.ts';
import type { Indices } from './layout.ts';

/**
 * F.embedding(indices, weight): out[..., :] = weight[indices[...], :]. weight: (V, D); indices
 * of any shape (a tensor's shape, `shape` when given, else 1-d) -> (...indices, D).
 * Repeated indices accumulate in the weight gradient.
 */
export function embedding(weight: Tensor, indices: Indices, shape?: Shape): Tensor {
  if (weight.ndim !== 2) throw new Error(`embedding: weight must be (V, D), got ${fmtShape(weight.shape)}`);
  const [v, d] = weight.shape;
  const isTensor = !(Array.isArray(indices) || indices instanceof Int32Array);
  const src: ArrayLike<number> = isTensor ? (indices as Tensor).data : (indices as ArrayLike<number>);
  const idxShape = shape ?? (isTensor ? (indices as Tensor).shape : [src.length]);
  if (sizeOf(idxShape) !== src.length) throw new Error(`embedding: ${src.length} indices do not fill shape ${fmtShape(idxShape)}`);
  const idx = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const t = src[i];
    if (!Number.isInteger(t) || t < 0 || t >= v) throw new Error(`embedding: index ${t} at position ${i} is not an integer in [0, ${v})`);
    idx[i] = t;
  }
  const out = empty([...idxShape, d], weight.dtype); // (..., D)
  const o = out.data, w = weight.data;
  for (let i = 0; i < idx.length; i++) o.set(w.subarray(idx[i] * d, (idx[i] + 1) * d), i * d);
  return record('embedding', [weight], out, (g) => {
    const dw = empty(weight.shape, weight.dtype); // (V, D), zero-filled
    const dd = dw.data, gd = g.data;
    for (let i = 0; i < idx.length; i++) {
      const to = idx[i] * d, from = i * d;
      for (let j = 0; j < d; j++) dd[to + j] += gd[from + j];
    }
    return [dw];
  });
}
