// Attention ops: scaled dot-product attention over (B, H, N, D) on the fused kernel (the backward
// recomputes probabilities from the saved log-sum-exp), optionally causal (query i sees keys j <= i,
// for autoregressive models such as DiGIT's GPT), and qkvAttention, the timm/DiT block body from a
// packed qkv projection (never causal). Not here: arbitrary masks, dropout, q/k norms, the qkv and
// output projections (those are linear layers in nn/).
// Mixed precision: under setLinearPrecision('bf16') (train.precision bf16) a float32 qkvAttention
// runs its products on bf16 operands with fp32 sums (K.qkvAttention* precision 'bf16').
import { empty, uninit, type Tensor } from '../../tensor/tensor.ts';
import { getLinearPrecision } from './matmul.ts';
import { fmtShape, sameShape } from '../../tensor/shape.ts';
import { K } from '../../kernels/index.ts';
import { record } from '../tape.ts';

export interface AttentionOpts {
  /** Query i attends to keys j <= i only (torch's is_causal=True). Default false. */
  causal?: boolean;
}

/**
 * F.scaled_dot_product_attention(q, k, v, scale=scale, is_causal=opts.causal):
 * softmax(q k^T * scale + mask) v, mask -inf above the diagonal when causal, else none.
 * q, k, v: (..., N, D) with one shape (usually (B, H, N, D)); scale defaults to 1/sqrt(D).
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, scale?: number, opts: AttentionOpts = {}): Tensor {
  if (q.ndim < 2 || !sameShape(q.shape, k.shape) || !sameShape(q.shape, v.shape)) {
    throw new Error(`scaledDotProductAttention: q, k, v must share one (..., N, D) shape, got ${fmtShape(q.shape)}, ${fmtShape(k.shape)}, ${fmtShape(v.shape)}`);
  }
  if (q.dtype !== k.dtype || q.dtype !== v.dtype) throw new Error(`scaledDotProductAttention: dtypes ${q.dtype}, ${k.dtype}, ${v.dtype} differ`);
  const n = q.shape[q.ndim - 2], d = q.shape[q.ndim - 1];
  const bh = n * d === 0 ? 0 : q.size / (n * d);
  const s = scale ?? 1 / Math.sqrt(d);
  const causal = opts.causal ?? false;
  const out = empty(q.shape, q.dtype); // (B, H, N, D)
  const lse = empty([bh, n], q.dtype); // (B*H, N)
  K.attentionForward(q.data, k.data, v.data, out.data, lse.data, bh, n, d, s, causal);
  return record('scaledDotProductAttention', [q, k, v], out, (g) => {
    const dq = empty(q.shape, q.dtype), dk = empty(k.shape, k.dtype), dv = empty(v.shape, v.dtype);
    K.attentionBackward(q.data, k.data, v.data, out.data, lse.data, g.data, dq.data, dk.data, dv.data, bh, n, d, s, causal);
    return [q.requiresGrad ? dq : null, k.requiresGrad ? dk : null, v.requiresGrad ? dv : null];
  });
}

/**
 * Multi-head self-attention from a packed projection, as in timm/DiT's Attention.forward:
 * qkv (B, N, 3*H*D) is read as qkv.reshape(B, N, 3, H, D).permute(2, 0, 3, 1, 4), attended per
 * head, and the heads are merged back: returns (B, N, H*D). One op on K.qkvAttentionForward,
 * which reads q, k, v in place (no permute/slice copies); equal to that composite (tested).
 */
export function qkvAttention(qkv: Tensor, heads: number, scale?: number): Tensor {
  if (qkv.ndim !== 3 || !Number.isInteger(heads) || heads < 1 || qkv.shape[2] % (3 * heads) !== 0) {
    throw new Error(`qkvAttention: expected (B, N, 3*H*D) with H=${heads}, got ${fmtShape(qkv.shape)}`);
  }
  const [b, n, c3] = qkv.shape;
  const d = c3 / (3 * heads);
  const s = scale ?? 1 / Math.sqrt(d);
  // bf16 only for float32 (float64 is the gradcheck path); read once: the backward uses the same.
  const precision = qkv.dtype === 'float32' ? getLinearPrecision() : 'fp32';
  const out = uninit([b, n, heads * d], qkv.dtype); // (B, N, H*D)
  const lse = uninit([b * heads, n], qkv.dtype); // (B*H, N)
  K.qkvAttentionForward(qkv.data, out.data, lse.data, b, n, heads, d, s, precision);
  return record('qkvAttention', [qkv], out, (g) => {
    const dqkv = uninit(qkv.shape, qkv.dtype); // (B, N, 3*H*D)
    K.qkvAttentionBackward(qkv.data, out.data, lse.data, g.data, dqkv.data, b, n, heads, d, s, precision);
    return [dqkv];
  });
}
