// nn.GroupNorm: `groups` groups over the channels of (N, C, *) inputs, per-channel affine
// (`weight` = 1, `bias` = 0 at init, as PyTorch). The conv VAE and U-Net use it with eps 1e-6 /
// 1e-5. Not here: the math (autograd/ops/norm.ts).
import type { Tensor } from '../tensor/tensor.ts';
import { groupNorm } from '../autograd/ops/norm.ts';
import { Module } from './module.ts';
import { ones } from './init.ts';

export interface GroupNormOptions { eps?: number; affine?: boolean }

export class GroupNorm extends Module {
  readonly eps: number;
  readonly weight: Tensor | null; // (C)
  readonly bias: Tensor | null; // (C)

  constructor(readonly numGroups: number, readonly numChannels: number, opts: GroupNormOptions = {}) {
    super();
    if (numChannels % numGroups !== 0) throw new Error(`GroupNorm: ${numChannels} channels do not split into ${numGroups} groups`);
    this.eps = opts.eps ?? 1e-5;
    const affine = opts.affine ?? true;
    this.weight = affine ? ones(this.param('weight', [numChannels])) : null;
    this.bias = affine ? this.param('bias', [numChannels]) : null;
  }

  /** x (N, C, *) -> (N, C, *). */
  forward(x: Tensor): Tensor {
    return groupNorm(x, this.numGroups, this.weight, this.bias, this.eps);
  }
}
