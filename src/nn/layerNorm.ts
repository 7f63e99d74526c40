// nn.LayerNorm over the last dim, with or without the elementwise affine (`weight` = 1, `bias` = 0
// at init, as PyTorch). DiT/SiT blocks use it without affine and eps 1e-6.
import type { Tensor } from '../tensor/tensor.ts';
import { layerNorm } from '../autograd/ops/norm.ts';
import { Module } from './module.ts';
import { ones } from './init.ts';

export interface LayerNormOptions { eps?: number; elementwiseAffine?: boolean }

export class LayerNorm extends Module {
  readonly eps: number;
  readonly weight: Tensor | null; // (dim)
  readonly bias: Tensor | null; // (dim)

  constructor(readonly dim: number, opts: LayerNormOptions = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? ones(this.param('weight', [dim])) : null;
    this.bias = affine ? this.param('bias', [dim]) : null;
  }

  /** x (..., dim) -> (..., dim). */
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.dim, this.weight, this.bias, this.eps);
  }
}
