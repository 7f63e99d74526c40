// The frozen encoder (methods/encoder.ts): preprocessing from [-1, 1] against closed forms (each
// normalisation, 1 → 3 channel repeat, resize to grid × patch), features equal to the ViT's own
// normalised tokens, no gradient ever recorded, parameters marked frozen, token grid checked.
import { describe, expect, it } from 'vitest';
import { backward, mul, sum } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { createViT, vitPreset } from '../../src/models/vit.ts';
import { FrozenEncoder, IMAGENET_MEAN, IMAGENET_STD } from '../../src/methods/encoder.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { tinyEncoder } from './tiny.ts';

describe('FrozenEncoder', () => {
  it('identity / zero-one / imagenet preprocessing; a grey image is repeated to 3 channels', () => {
    const x = new Rng(1).uniform([2, 1, 8, 8], -1, 1);
    const id = tinyEncoder(1, 'identity').preprocess(x);
    expect(id.toArray()).toEqual(x.toArray());
    const zo = tinyEncoder(1, 'zero-one').preprocess(x);
    expectClose('zero-one', zo.data, Array.from(x.data, (v) => (v + 1) / 2), 1e-7, 0);
    const im = tinyEncoder(1, 'imagenet', 3).preprocess(x);
    expect(im.shape).toEqual([2, 3, 8, 8]);
    const ref: number[] = [];
    for (let b = 0; b < 2; b++) for (let c = 0; c < 3; c++) for (let i = 0; i < 64; i++) ref.push(((x.data[b * 64 + i] + 1) / 2 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]);
    expectClose('imagenet', im.data, ref, 1e-6, 1e-6);
    expect(() => tinyEncoder(1, 'imagenet', 1).preprocess(x)).toThrow(/3-channel encoder/);
    expect(() => tinyEncoder(1, 'identity', 1).preprocess(new Rng(2).normal([2, 3, 8, 8]))).toThrow(/3-channel images for a 1-channel encoder/);
  });

  it('resizes to grid × encoder patch when the image side differs (a /14-style encoder on 8 px data)', () => {
    const vit = createViT(vitPreset('ViT-T/4', { imgSize: 12, patchSize: 3, inChannels: 1, embedDim: 8, depth: 1, numHeads: 2 }), 3);
    const enc = new FrozenEncoder(vit, { normalization: 'identity', grid: 4 });
    expect(enc.side).toBe(12);
    const f = enc.features(new Rng(4).normal([2, 1, 8, 8]));
    expect(f.patch.shape).toEqual([2, 16, 8]);
    // a constant image stays constant under bilinear resizing
    const c = enc.preprocess(new Rng(5).uniform([1, 1, 8, 8], 0.25, 0.25));
    expect(c.shape).toEqual([1, 1, 12, 12]);
    expectClose('constant image', c.data, new Array(144).fill(0.25), 1e-7, 0);
    // on the native side no resize happens
    const native = new FrozenEncoder(createViT(vitPreset('ViT-T/4', { imgSize: 8, patchSize: 2, inChannels: 1, embedDim: 8, depth: 1, numHeads: 2 }), 3), { normalization: 'identity', grid: 4 });
    const x8 = new Rng(6).normal([1, 1, 8, 8]);
    expect(native.preprocess(x8)).toBe(x8);
  });

  it('features are the ViT normalised patch / class tokens, recorded on no tape, parameters frozen', () => {
    const enc = tinyEncoder(7);
    const x = new Rng(8).normal([2, 1, 8, 8]).requireGrad();
    const ref = enc.vit.forward(x);
    const f = enc.features(x);
    expect(f.patch.toArray()).toEqual(ref.patchTokens.toArray());
    expect(f.cls.toArray()).toEqual(ref.clsToken.toArray());
    expect(f.patch.requiresGrad || f.cls.requiresGrad).toBe(false);
    expect(enc.vit.training).toBe(false);
    expect(enc.vit.parameters().every((p) => !p.requiresGrad)).toBe(true);
    // even a loss built on the features and a trainable tensor leaves the encoder untouched
    const w = new Rng(9).normal([1, 1, 8]).requireGrad();
    backward(sum(mul(f.patch, w)));
    expect(w.grad).not.toBeNull();
    expect(x.grad).toBeNull();
    expect(enc.vit.parameters().every((p) => p.grad === null)).toBe(true);
  });
});
