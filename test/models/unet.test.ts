// The diffusers-layout U-Net: shapes (output = input, 4x4 middle), the skip-channel arithmetic of
// UpBlock2D against diffusers' formula, seed determinism, time and class conditioning, label
// dropout, gradients to every parameter, and U-REPA's routing invariant: a loss on the mid-block
// tap reaches the down path and the mid block only.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/tensor/rng.ts';
import { type Tensor } from '../../src/tensor/tensor.ts';
import { add, backward, mean, mul } from '../../src/autograd/index.ts';
import { createUNet, unetMidSize, unetPreset } from '../../src/models/unet.ts';
import { expectClose } from '../kernels/expectClose.ts';

const cfg = unetPreset('UNet-T');
const latents = (b: number, seed: number): Tensor => new Rng(seed).normal([b, 4, 8, 8]);

describe('UNet shapes and layout', () => {
  it('output matches the input; the mid tap is the 4x4 lowest resolution, also as row-major tokens', () => {
    const m = createUNet(cfg, 1).eval();
    const out = m.forward(latents(2, 1), [0.1, 0.7], [3, 5]);
    expect(out.out.shape).toEqual([2, 4, 8, 8]);
    expect(unetMidSize(cfg)).toBe(4);
    expect(out.mid.shape).toEqual([2, 32, 4, 4]);
    expect(out.midTokens.shape).toEqual([2, 16, 32]);
    // token n of image b is mid[b, :, n / 4, n % 4]
    const [b, n, c] = [1, 6, 5];
    expect(out.midTokens.data[(b * 16 + n) * 32 + c]).toBe(out.mid.data[((b * 32 + c) * 4 + Math.floor(n / 4)) * 4 + (n % 4)]);
  });

  it('resnet input widths follow diffusers (prev or out, plus the popped skip) and names are diffusers\'', () => {
    const m = createUNet(unetPreset('UNet-T', { blockOutChannels: [16, 32, 48], sampleSize: 8, attentionHeadDim: 16 }), 0);
    const ch = [16, 32, 48], rev = [48, 32, 16];
    m.up_blocks.items.forEach((blk, i) => {
      const inCh = rev[Math.min(i + 1, 2)], prev = i === 0 ? rev[0] : rev[i - 1];
      blk.resnets.items.forEach((r, j) => {
        const skip = j === blk.resnets.length - 1 ? inCh : rev[i];
        expect(r.inChannels, `up_blocks.${i}.resnets.${j}`).toBe((j === 0 ? prev : rev[i]) + skip);
      });
    });
    const keys = [...m.stateDict().keys()];
    for (const k of ['conv_in.weight', 'time_embedding.linear_1.weight', 'time_embedding.linear_2.bias', 'class_embedding.weight',
      'down_blocks.0.resnets.0.time_emb_proj.weight', 'down_blocks.0.downsamplers.0.conv.weight', 'down_blocks.1.resnets.0.conv_shortcut.weight',
      'mid_block.attentions.0.to_out.0.weight', 'mid_block.resnets.1.norm2.bias', 'up_blocks.0.resnets.1.conv_shortcut.weight',
      'up_blocks.1.upsamplers.0.conv.bias', 'conv_norm_out.weight', 'conv_out.bias']) expect(keys, k).toContain(k);
    expect(keys.some((k) => k.startsWith('down_blocks.2.downsamplers'))).toBe(false);
    expect(keys.some((k) => k.startsWith('up_blocks.2.upsamplers'))).toBe(false);
    expect(ch.length).toBe(m.down_blocks.length);
  });

  it('the same seed gives the same outputs; time and class change them; null labels follow forceDrop', () => {
    const a = createUNet(cfg, 4).eval(), b = createUNet(cfg, 4).eval();
    const x = latents(2, 2);
    const ref = a.forward(x, [0.3, 0.3], [1, 2]);
    expectClose('same seed', b.forward(x, [0.3, 0.3], [1, 2]).out.data, ref.out.data, 0, 0);
    const dt = a.forward(x, [0.3, 0.9], [1, 2]).out, dy = a.forward(x, [0.3, 0.3], [1, 7]).out;
    const diff = (u: Tensor, lo: number, hi: number): number => Math.max(...Array.from(u.data.subarray(lo, hi), (v, i) => Math.abs(v - ref.out.data[lo + i])));
    expect(diff(dt, 0, 256)).toBe(0); // sample 0 unchanged
    expect(diff(dt, 256, 512)).toBeGreaterThan(1e-4);
    expect(diff(dy, 256, 512)).toBeGreaterThan(1e-4);
    expect(Array.from(a.forward(x, [0.3, 0.3], [1, 2], { forceDrop: [0, 1] }).labels)).toEqual([1, 10]);
    expect(() => a.train().forward(x, [0.3, 0.3], [1, 2])).toThrow(/needs an rng/);
    const unc = createUNet(unetPreset('UNet-T', { numClasses: 0, classDropoutProb: 0 }), 0);
    expect(unc.class_embedding).toBeNull();
    expect(unc.forward(x, [0.1, 0.2], null).out.shape).toEqual([2, 4, 8, 8]);
  });
});

describe('UNet gradients', () => {
  it('one backward reaches every parameter', () => {
    const m = createUNet(cfg, 2);
    const out = m.forward(latents(4, 3), [0.1, 0.4, 0.6, 0.9], [0, 1, 2, 3], { forceDrop: [0, 0, 0, 1] });
    backward(add(mean(mul(out.out, out.out)), mean(mul(out.mid, out.mid))));
    for (const [name, p] of m.namedParameters()) {
      expect(p.grad, name).not.toBeNull();
      expect(p.grad!.toArray().some((v) => v !== 0), `${name} has an all-zero gradient`).toBe(true);
    }
  });

  it('a loss on the mid tap reaches conv_in, the down blocks and the mid block, never the up path', () => {
    const m = createUNet(cfg, 2);
    const out = m.forward(latents(2, 3), [0.2, 0.5], [4, 5], { forceDrop: [0, 0] });
    backward(mean(mul(out.midTokens, out.midTokens)));
    for (const [name, p] of m.namedParameters()) {
      const touched = p.grad !== null && p.grad.toArray().some((v) => v !== 0);
      const upstream = /^(conv_in|time_embedding|class_embedding|down_blocks|mid_block)\./.test(name);
      expect(touched, name).toBe(upstream);
    }
  });
});
