// nn.BatchNorm2d (works for any (N, C, *) input): optional affine `weight`/`bias`, buffers
// `running_mean`, `running_var` and `num_batches_tracked` under PyTorch's state_dict names, so
// torchvision-style checkpoints load strictly. Training mode normalises with batch statistics and
// updates the running ones (momentum as PyTorch, unbiased variance); eval mode uses the running
// statistics. REPA-E's latent BN is BatchNorm2d(C, eps 1e-4, affine false). Not here: momentum
// None (cumulative average), SyncBatchNorm.
import type { Tensor } from '../tensor/tensor.ts';
import { batchNorm } from '../autograd/ops/norm.ts';
import { Module } from './module.ts';
import { ones } from './init.ts';

export interface BatchNormOptions { eps?: number; momentum?: number; affine?: boolean; trackRunningStats?: boolean }

export class BatchNorm2d extends Module {
  readonly eps: number;
  readonly momentum: number;
  readonly weight: Tensor | null; // (C)
  readonly bias: Tensor | null; // (C)
  readonly running_mean: Tensor | null; // (C)
  readonly running_var: Tensor | null; // (C)
  /** A float here (int64 in PyTorch); counts training-mode forwards. */
  readonly num_batches_tracked: Tensor | null; // ()

  constructor(readonly numFeatures: number, opts: BatchNormOptions = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    const affine = opts.affine ?? true, track = opts.trackRunningStats ?? true;
    this.weight = affine ? ones(this.param('weight', [numFeatures])) : null;
    this.bias = affine ? this.param('bias', [numFeatures]) : null;
    this.running_mean = track ? this.buffer('running_mean', [numFeatures]) : null;
    this.running_var = track ? ones(this.buffer('running_var', [numFeatures])) : null;
    this.num_batches_tracked = track ? this.buffer('num_batches_tracked', []) : null;
  }

  /** x (N, C, *) -> (N, C, *). Without running stats, batch statistics are used in both modes. */
  forward(x: Tensor): Tensor {
    if (this.running_mean === null) return batchNorm(x, null, null, this.weight, this.bias, { training: true, eps: this.eps });
    if (this.training) this.num_batches_tracked!.data[0] += 1;
    return batchNorm(x, this.running_mean, this.running_var, this.weight, this.bias, { training: this.training, momentum: this.momentum, eps: this.eps });
  }
}
