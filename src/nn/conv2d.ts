// nn.Conv2d: weight (out, in/groups, kh, kw), bias (out), PyTorch default init
// (U(±1/sqrt(fan_in)) for both). Not here: the convolution itself (autograd/ops/conv.ts).
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { conv2d, type Pair } from '../autograd/ops/conv.ts';
import { Module } from './module.ts';
import { torchDefault } from './init.ts';

export interface Conv2dLayerOptions { stride?: Pair; padding?: Pair; groups?: number; bias?: boolean }

const pair = (p: Pair): [number, number] => (typeof p === 'number' ? [p, p] : [p[0], p[1]]);

export class Conv2d extends Module {
  readonly weight: Tensor; // (out, in/groups, kh, kw)
  readonly bias: Tensor | null; // (out)
  readonly stride: Pair;
  readonly padding: Pair;
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, kernel: Pair, rng: Rng, opts: Conv2dLayerOptions = {}) {
    super();
    const [kh, kw] = pair(kernel);
    this.groups = opts.groups ?? 1;
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new Error(`Conv2d: ${inChannels} -> ${outChannels} channels do not split into ${this.groups} groups`);
    }
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.weight = this.param('weight', [outChannels, inChannels / this.groups, kh, kw]);
    this.bias = (opts.bias ?? true) ? this.param('bias', [outChannels]) : null;
    torchDefault(this.weight, this.bias, rng);
  }

  /** x (N, in, H, W) -> (N, out, OH, OW). */
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, groups: this.groups });
  }
}
