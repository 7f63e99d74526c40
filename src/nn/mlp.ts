// timm's Mlp: fc1 -> act -> fc2 (dropout 0), state_dict names `fc1.*`, `fc2.*`. DiT/SiT use it
// with hidden = 4 * dim and GELU(tanh).
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { Module } from './module.ts';
import { Linear } from './linear.ts';
import { activate, type ActName } from './activation.ts';

export interface MlpOptions { outFeatures?: number; act?: ActName; bias?: boolean }

export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly act: ActName;

  constructor(inFeatures: number, hiddenFeatures: number, rng: Rng, opts: MlpOptions = {}) {
    super();
    this.act = opts.act ?? 'gelu';
    this.fc1 = this.child('fc1', new Linear(inFeatures, hiddenFeatures, rng.child('fc1'), { bias: opts.bias }));
    this.fc2 = this.child('fc2', new Linear(hiddenFeatures, opts.outFeatures ?? inFeatures, rng.child('fc2'), { bias: opts.bias }));
  }

  /** x (..., in) -> (..., out). */
  forward(x: Tensor): Tensor {
    return this.fc2.forward(activate(this.act, this.fc1.forward(x)));
  }
}
