// timm's Attention (as DiT/SiT use it): one packed `qkv` Linear(D -> 3D), multi-head softmax
// attention with scale 1/sqrt(D/H), output `proj` Linear(D -> D). With qkNorm, timm's qk_norm=True:
// q and k each pass a LayerNorm over the head dim (with affine, eps 1e-5: `q_norm`, `k_norm`) before
// the product — SVG's DiT (github.com/shiml20/SVG models/models_SVG.py Attention). Not here: masks,
// dropout (DiT/SiT/REPA run without them), RMSNorm q/k-norm with RoPE (ropeAttention.ts).
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { qkvAttention } from '../autograd/ops/attention.ts';
import { chunk, concat, reshape } from '../autograd/ops/index.ts';
import { Module } from './module.ts';
import { Linear } from './linear.ts';
import { LayerNorm } from './layerNorm.ts';

export interface AttentionOptions { qkvBias?: boolean; projBias?: boolean; qkNorm?: boolean }

export class Attention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  /** LayerNorm(D/H) of q and of k (qkNorm), null without. */
  readonly q_norm: LayerNorm | null;
  readonly k_norm: LayerNorm | null;

  constructor(readonly dim: number, readonly heads: number, rng: Rng, opts: AttentionOptions = {}) {
    super();
    if (dim % heads !== 0) throw new Error(`Attention: dim ${dim} is not divisible by ${heads} heads`);
    this.qkv = this.child('qkv', new Linear(dim, 3 * dim, rng.child('qkv'), { bias: opts.qkvBias ?? false }));
    this.proj = this.child('proj', new Linear(dim, dim, rng.child('proj'), { bias: opts.projBias ?? true }));
    const hd = dim / heads;
    this.q_norm = opts.qkNorm ? this.child('q_norm', new LayerNorm(hd)) : null;
    this.k_norm = opts.qkNorm ? this.child('k_norm', new LayerNorm(hd)) : null;
  }

  /** x (B, N, D) -> (B, N, D). */
  forward(x: Tensor): Tensor {
    let qkv = this.qkv.forward(x); // (B, N, 3D)
    if (this.q_norm && this.k_norm) {
      const [B, N] = x.shape, hd = this.dim / this.heads;
      const [q, k, v] = chunk(reshape(qkv, [B, N, 3, this.heads, hd]), 3, 2); // 3 × (B, N, 1, H, hd)
      qkv = reshape(concat([this.q_norm.forward(q), this.k_norm.forward(k), v], 2), [B, N, 3 * this.dim]); // (B, N, 3D)
    }
    return this.proj.forward(qkvAttention(qkv, this.heads)); // (B, N, D)
  }
}
