// nn.Linear: y = x W^T + b with PyTorch's (out, in) weight and state_dict names `weight`, `bias`.
// Initialised like PyTorch (U(±1/sqrt(in)) for both) from the Rng it is given; models that want
// another scheme re-initialise with src/nn/init.ts. Not here: the math (autograd/ops/matmul.ts).
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { linear } from '../autograd/ops/matmul.ts';
import { Module } from './module.ts';
import { torchDefault } from './init.ts';

export interface LinearOptions { bias?: boolean }

export class Linear extends Module {
  readonly weight: Tensor; // (out, in)
  readonly bias: Tensor | null; // (out)

  constructor(readonly inFeatures: number, readonly outFeatures: number, rng: Rng, opts: LinearOptions = {}) {
    super();
    this.weight = this.param('weight', [outFeatures, inFeatures]);
    this.bias = (opts.bias ?? true) ? this.param('bias', [outFeatures]) : null;
    torchDefault(this.weight, this.bias, rng);
  }

  /** x (..., in) -> (..., out). */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
