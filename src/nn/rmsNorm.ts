// nn.Module for RMSNorm over the last dim with a learnable scale `weight` (ones at init), as
// LlamaRMSNorm and DDT's RMSNorm (MCG-NJU/DDT decoupled_improved_dit.py; eps 1e-6 there).
// Not here: the math (autograd/ops/rmsNorm.ts).
import type { Tensor } from '../tensor/tensor.ts';
import { rmsNorm } from '../autograd/ops/rmsNorm.ts';
import { Module } from './module.ts';
import { ones } from './init.ts';

export class RMSNorm extends Module {
  readonly weight: Tensor; // (dim)

  constructor(readonly dim: number, readonly eps = 1e-6) {
    super();
    this.weight = ones(this.param('weight', [dim]));
  }

  /** x (..., dim) -> (..., dim). */
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}
