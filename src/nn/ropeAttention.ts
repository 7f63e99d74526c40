// Multi-head self-attention with per-head q/k RMSNorm and rotary positions, as DDT's RAttention
// (MCG-NJU/DDT decoupled_improved_dit.py; q/k-norm: Dehghani et al., ViT-22B, arXiv 2302.05442;
// RoPE: arXiv 2104.09864): qkv = Linear(D → 3D) (bias optional, none in DDT) read as
// (B, N, 3, H, d); q ← q_norm(q), k ← k_norm(k) over d (RMSNorm with its own weight, eps 1e-6);
// q, k rotated by the angle table (ops/rope.ts); softmax(q kᵀ/√d) v; heads merged; proj (bias).
// qkNorm false: no norms; angles null: no rotation (then this is timm's Attention without bias).
// State_dict names qkv, q_norm, k_norm, proj. Not here: the angle table (rope2dAngles), the block.
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { fmtShape } from '../tensor/shape.ts';
import { permute, slice } from '../autograd/ops/layout.ts';
import { reshape } from '../autograd/ops/shape.ts';
import { qkvAttention, scaledDotProductAttention } from '../autograd/ops/attention.ts';
import { qkNormRope, rotary } from '../autograd/ops/rope.ts';
import { rmsNorm } from '../autograd/ops/rmsNorm.ts';
import { linear } from '../autograd/ops/matmul.ts';
import { Module } from './module.ts';
import { Linear } from './linear.ts';
import { RMSNorm } from './rmsNorm.ts';

/** The weights ropeAttention reads: qkv (3D, D) and bias or null, q/k norm weights (d) or null, proj (D, D) and bias. */
export interface RopeAttentionWeights {
  qkvW: Tensor; qkvB: Tensor | null; qNorm: Tensor | null; kNorm: Tensor | null; projW: Tensor; projB: Tensor | null; eps: number;
}

/**
 * The module's forward as a function of its weights: x (B, N, D) -> (B, N, D). The norms and the
 * rotation run as one op on the packed projection (qkNormRope), then the packed attention kernel
 * (qkvAttention); ropeAttentionComposite is the same map from slices, rmsNorm and rotary (tests).
 */
export function ropeAttention(x: Tensor, w: RopeAttentionWeights, heads: number, angles: Float64Array | null): Tensor {
  const dim = w.projW.shape[0];
  if (x.ndim !== 3 || x.shape[2] !== dim) throw new Error(`RopeAttention: expected x (B, N, ${dim}), got ${fmtShape(x.shape)}`);
  const qkv = qkNormRope(linear(x, w.qkvW, w.qkvB), heads, w.qNorm, w.kNorm, w.eps, angles); // (B, N, 3D)
  return linear(qkvAttention(qkv, heads), w.projW, w.projB); // (B, N, D)
}

/** ropeAttention composed from slices, rmsNorm, rotary and scaledDotProductAttention. */
export function ropeAttentionComposite(x: Tensor, w: RopeAttentionWeights, heads: number, angles: Float64Array | null): Tensor {
  const dim = w.projW.shape[0];
  const [b, n] = x.shape, d = dim / heads;
  const qkv = reshape(linear(x, w.qkvW, w.qkvB), [b, n, 3, heads, d]); // (B, N, 3, H, d)
  const part = (i: number): Tensor => reshape(slice(qkv, 2, i, i + 1), [b, n, heads, d]); // (B, N, H, d)
  let q = part(0), k = part(1);
  const v = part(2);
  if (w.qNorm && w.kNorm) { q = rmsNorm(q, w.qNorm, w.eps); k = rmsNorm(k, w.kNorm, w.eps); }
  if (angles) { q = rotary(q, angles); k = rotary(k, angles); }
  const toHeads = (t: Tensor): Tensor => permute(t, [0, 2, 1, 3]); // (B, H, N, d)
  const o = scaledDotProductAttention(toHeads(q), toHeads(k), toHeads(v)); // (B, H, N, d)
  return linear(reshape(permute(o, [0, 2, 1, 3]), [b, n, dim]), w.projW, w.projB); // (B, N, D)
}

export interface RopeAttentionOptions { qkvBias?: boolean; qkNorm?: boolean; eps?: number }

export class RopeAttention extends Module {
  readonly qkv: Linear;
  readonly q_norm: RMSNorm | null;
  readonly k_norm: RMSNorm | null;
  readonly proj: Linear;
  readonly headDim: number;

  constructor(readonly dim: number, readonly heads: number, rng: Rng, opts: RopeAttentionOptions = {}) {
    super();
    if (!Number.isInteger(heads) || heads < 1 || dim % heads !== 0) throw new Error(`RopeAttention: dim ${dim} is not divisible by ${heads} heads`);
    this.headDim = dim / heads;
    this.qkv = this.child('qkv', new Linear(dim, 3 * dim, rng.child('qkv'), { bias: opts.qkvBias ?? false }));
    const qk = opts.qkNorm ?? true;
    this.q_norm = qk ? this.child('q_norm', new RMSNorm(this.headDim, opts.eps ?? 1e-6)) : null;
    this.k_norm = qk ? this.child('k_norm', new RMSNorm(this.headDim, opts.eps ?? 1e-6)) : null;
    this.proj = this.child('proj', new Linear(dim, dim, rng.child('proj')));
  }

  /** x (B, N, D); angles (N, d/2) from rope2dAngles or null -> (B, N, D). */
  forward(x: Tensor, angles: Float64Array | null): Tensor {
    return ropeAttention(x, {
      qkvW: this.qkv.weight, qkvB: this.qkv.bias, qNorm: this.q_norm?.weight ?? null, kNorm: this.k_norm?.weight ?? null,
      projW: this.proj.weight, projB: this.proj.bias, eps: this.q_norm?.eps ?? 1e-6,
    }, this.heads, angles);
  }
}
