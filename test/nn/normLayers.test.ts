// GroupNorm and BatchNorm2d modules: PyTorch state_dict names, the running-statistic update
// (r' = (1 - m) r + m stat, unbiased variance) and eval normalisation against plain-loop
// references, num_batches_tracked, affine=False (REPA-E's latent BN). The ops' gradients are
// checked in test/autograd/norm.test.ts.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/tensor/rng.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { BatchNorm2d, GroupNorm } from '../../src/nn/index.ts';
import { expectClose } from '../kernels/expectClose.ts';

const names = (m: { stateDict(): Map<string, Tensor> }): string[] => [...m.stateDict().keys()];

/** Per-channel mean and biased / unbiased variance of (N, C, S). */
function channelStats(x: ArrayLike<number>, n: number, c: number, s: number): { mean: number[]; biased: number[]; unbiased: number[] } {
  const mean: number[] = [], biased: number[] = [], unbiased: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    const v: number[] = [];
    for (let i = 0; i < n; i++) for (let j = 0; j < s; j++) v.push(x[(i * c + ch) * s + j]);
    const m = v.reduce((a, b) => a + b) / v.length;
    const sq = v.reduce((a, b) => a + (b - m) ** 2, 0);
    mean.push(m); biased.push(sq / v.length); unbiased.push(sq / (v.length - 1));
  }
  return { mean, biased, unbiased };
}

describe('BatchNorm2d', () => {
  it('has PyTorch names; affine=False keeps only the buffers', () => {
    expect(names(new BatchNorm2d(3))).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    const bn = new BatchNorm2d(4, { affine: false, eps: 1e-4 });
    expect(names(bn)).toEqual(['running_mean', 'running_var', 'num_batches_tracked']);
    expect(bn.parameters()).toHaveLength(0);
  });

  it('train: batch statistics normalise, running stats move by momentum with the unbiased variance', () => {
    const bn = new BatchNorm2d(3, { momentum: 0.2 });
    bn.weight!.data.set([1.5, -0.5, 2]);
    bn.bias!.data.set([0.1, 0.2, -0.3]);
    const x = new Rng(1).normal([4, 3, 2, 5], 0.7, 2);
    const y = bn.train().forward(x);
    const st = channelStats(x.data, 4, 3, 10);
    expectClose('running_mean', bn.running_mean!.data, st.mean.map((m) => 0.2 * m), 1e-6, 1e-5);
    expectClose('running_var', bn.running_var!.data, st.unbiased.map((v) => 0.8 + 0.2 * v), 1e-6, 1e-5);
    expect(bn.num_batches_tracked!.item()).toBe(1);
    const want = Array.from(x.data, (v, i) => {
      const ch = Math.floor(i / 10) % 3;
      return ((v - st.mean[ch]) / Math.sqrt(st.biased[ch] + 1e-5)) * bn.weight!.data[ch] + bn.bias!.data[ch];
    });
    expectClose('train output', y.data, want, 1e-5, 1e-5);
  });

  it('eval: running statistics normalise and stay put', () => {
    const bn = new BatchNorm2d(2, { affine: false, eps: 1e-4 });
    bn.running_mean!.data.set([0.5, -1]);
    bn.running_var!.data.set([4, 0.25]);
    const x = new Rng(2).normal([3, 2, 4]);
    const y = bn.eval().forward(x);
    const want = Array.from(x.data, (v, i) => {
      const ch = Math.floor(i / 4) % 2;
      return (v - [0.5, -1][ch]) / Math.sqrt([4, 0.25][ch] + 1e-4);
    });
    expectClose('eval output', y.data, want, 1e-6, 1e-5);
    expect(bn.running_mean!.toArray()).toEqual([0.5, -1]);
    expect(bn.num_batches_tracked!.item()).toBe(0);
  });
});

describe('GroupNorm', () => {
  it('normalises each (sample, group) over its channels and positions, then the per-channel affine', () => {
    const gn = new GroupNorm(2, 4, { eps: 1e-6 });
    expect(names(gn)).toEqual(['weight', 'bias']);
    gn.weight!.data.set([1, 2, 3, 4]);
    gn.bias!.data.set([0, 1, 0, -1]);
    const x = new Rng(3).normal([2, 4, 3], 1, 3);
    const y = gn.forward(x);
    const want: number[] = [];
    for (let n = 0; n < 2; n++) {
      for (let g = 0; g < 2; g++) {
        const v = Array.from(x.data.subarray((n * 4 + 2 * g) * 3, (n * 4 + 2 * g + 2) * 3));
        const m = v.reduce((a, b) => a + b) / 6, s = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / 6 + 1e-6);
        v.forEach((val, k) => { const ch = 2 * g + Math.floor(k / 3); want.push(((val - m) / s) * gn.weight!.data[ch] + gn.bias!.data[ch]); });
      }
    }
    expectClose('group norm', y.data, want, 1e-5, 1e-5);
    expect(() => new GroupNorm(3, 4)).toThrow(/do not split/);
  });
});
