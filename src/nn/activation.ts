// Parameter-free activation modules (nn.SiLU, nn.GELU, nn.ReLU). They exist so that a Sequential's
// child indices match PyTorch's (`adaLN_modulation.1` is the Linear after an nn.SiLU at 0).
import type { Tensor } from '../tensor/tensor.ts';
import { gelu, relu, silu } from '../autograd/ops/unary.ts';
import { Module } from './module.ts';

/** 'gelu_tanh' is nn.GELU(approximate='tanh'), DiT's MLP activation. */
export type ActName = 'silu' | 'gelu' | 'gelu_tanh' | 'relu' | 'identity';

export function activate(name: ActName, x: Tensor): Tensor {
  switch (name) {
    case 'silu': return silu(x);
    case 'gelu': return gelu(x);
    case 'gelu_tanh': return gelu(x, 'tanh');
    case 'relu': return relu(x);
    case 'identity': return x;
  }
}

export class Activation extends Module {
  constructor(readonly kind: ActName) { super(); }
  forward(x: Tensor): Tensor { return activate(this.kind, x); }
}

export const SiLU = (): Activation => new Activation('silu');
export const GELU = (approximate: 'none' | 'tanh' = 'none'): Activation => new Activation(approximate === 'tanh' ? 'gelu_tanh' : 'gelu');
export const ReLU = (): Activation => new Activation('relu');
