// timm's Attention (as DiT/SiT use it): one packed `qkv` Linear(D -> 3D), multi-head softmax
// attention with scale 1/sqrt(D/H), output `proj` Linear(D -> D). Not here: qk-norm, masks,
// dropout (DiT/SiT/REPA run without them).
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { qkvAttention } from '../autograd/ops/attention.ts';
import { Module } from './module.ts';
import { Linear } from './linear.ts';

export interface AttentionOptions { qkvBias?: boolean; projBias?: boolean }

export class Attention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;

  constructor(readonly dim: number, readonly heads: number, rng: Rng, opts: AttentionOptions = {}) {
    super();
    if (dim % heads !== 0) throw new Error(`Attention: dim ${dim} is not divisible by ${heads} heads`);
    this.qkv = this.child('qkv', new Linear(dim, 3 * dim, rng.child('qkv'), { bias: opts.qkvBias ?? false }));
    this.proj = this.child('proj', new Linear(dim, dim, rng.child('proj'), { bias: opts.projBias ?? true }));
  }

  /** x (B, N, D) -> (B, N, D). */
  forward(x: Tensor): Tensor {
    const qkv = this.qkv.forward(x); // (B, N, 3D)
    return this.proj.forward(qkvAttention(qkv, this.heads)); // (B, N, D)
  }
}
