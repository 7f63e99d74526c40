// The diffusers-layout KL-VAE: shapes (32x32 -> 4x8x8), the posterior sample against a hand
// computation, seed determinism, gradients to every parameter, the right/bottom-padded
// downsampler against a scalar convolution, diffusers' key list (written out here from diffusers'
// Encoder/Decoder structure), loadSdVae on test-written files (current and pre-0.15 attention
// names), and reconstruction loss falling over 30 AdamW steps on the built-in shapes.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { tidy } from '../../src/tensor/tidy.ts';
import { add, backward, gaussianKL, mseLoss, mul, noGrad } from '../../src/autograd/index.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { AdamW } from '../../src/optim/index.ts';
import { makeShapes } from '../../src/data/shapes.ts';
import { Downsample2D } from '../../src/models/convBlocks.ts';
import { createVAE, vaeFactor, vaePreset } from '../../src/models/vae.ts';
import { loadSdVae, saveSdVae } from '../../src/models/sdVae.ts';
import { expectClose } from '../kernels/expectClose.ts';

const dir = mkdtempSync(join(tmpdir(), 'diffactor-vae-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cfg = vaePreset('VAE-T');
const images = (b: number, seed: number): Tensor => tensor(makeShapes(b, seed).images, [b, 3, 32, 32]);

/** diffusers AutoencoderKL state_dict keys (models/autoencoders/vae.py Encoder/Decoder, unet_2d_blocks, resnet.py, attention_processor.py). */
function diffusersVaeKeys(blockOut: number[], layers: number): string[] {
  const wb = (p: string): string[] => [`${p}.weight`, `${p}.bias`];
  const resnet = (p: string, cin: number, cout: number): string[] =>
    [...wb(`${p}.norm1`), ...wb(`${p}.conv1`), ...wb(`${p}.norm2`), ...wb(`${p}.conv2`), ...(cin !== cout ? wb(`${p}.conv_shortcut`) : [])];
  const mid = (p: string, c: number): string[] => [...resnet(`${p}.resnets.0`, c, c), ...resnet(`${p}.resnets.1`, c, c),
    ...['group_norm', 'to_q', 'to_k', 'to_v', 'to_out.0'].flatMap((n) => wb(`${p}.attentions.0.${n}`))];
  const keys = [...wb('encoder.conv_in'), ...wb('encoder.conv_norm_out'), ...wb('encoder.conv_out'), ...wb('quant_conv'), ...wb('post_quant_conv'),
    ...wb('decoder.conv_in'), ...wb('decoder.conv_norm_out'), ...wb('decoder.conv_out')];
  let out = blockOut[0];
  blockOut.forEach((ch, i) => {
    const inCh = out;
    out = ch;
    for (let j = 0; j < layers; j++) keys.push(...resnet(`encoder.down_blocks.${i}.resnets.${j}`, j === 0 ? inCh : out, out));
    if (i < blockOut.length - 1) keys.push(...wb(`encoder.down_blocks.${i}.downsamplers.0.conv`));
  });
  const rev = [...blockOut].reverse();
  out = rev[0];
  rev.forEach((ch, i) => {
    const prev = out;
    out = ch;
    for (let j = 0; j < layers + 1; j++) keys.push(...resnet(`decoder.up_blocks.${i}.resnets.${j}`, j === 0 ? prev : out, out));
    if (i < rev.length - 1) keys.push(...wb(`decoder.up_blocks.${i}.upsamplers.0.conv`));
  });
  keys.push(...mid('encoder.mid_block', blockOut[blockOut.length - 1]), ...mid('decoder.mid_block', rev[0]));
  return keys;
}

describe('VAE shapes, sampling, determinism', () => {
  it('encodes 32x32x3 to 4x8x8 latents and decodes back', () => {
    const m = createVAE(cfg, 1);
    expect(vaeFactor(cfg)).toBe(4);
    const out = m.forward(images(2, 1), new Rng(3));
    for (const k of ['mean', 'logvar', 'z'] as const) expect(out[k].shape, k).toEqual([2, 4, 8, 8]);
    expect(out.recon.shape).toEqual([2, 3, 32, 32]);
    expect(() => m.encode(new Rng(1).normal([1, 3, 30, 30]))).toThrow(/multiples of 4/);
  });

  it('z = mean + exp(logvar / 2) * eps with eps drawn from the given rng; no rng gives the mean', () => {
    const m = createVAE(cfg, 1);
    const x = images(2, 2);
    const p = m.encode(x, new Rng(7));
    const eps = new Rng(7).normal([2, 4, 8, 8]).data;
    const want = Array.from(p.mean.data, (mu, i) => mu + Math.exp(0.5 * p.logvar.data[i]) * eps[i]);
    expectClose('z', p.z.data, want, 1e-6, 1e-6);
    expect(m.encode(x).z.toArray()).toEqual(p.mean.toArray());
  });

  it('the same seed gives the same weights; the latent scaling round-trips', () => {
    const a = createVAE(cfg, 4), b = createVAE(cfg, 4);
    for (const [k, t] of a.stateDict()) expectClose(k, t.data, b.stateDict().get(k)!.data, 0, 0);
    const s = createVAE(vaePreset('VAE-T', { scalingFactor: 0.18215, shiftFactor: 0.1 }), 0);
    const z = new Rng(1).normal([1, 4, 8, 8]);
    expectClose('scale', s.scaleLatent(z).data, Array.from(z.data, (v) => (v - 0.1) * 0.18215), 1e-6, 1e-6);
    expectClose('unscale', s.unscaleLatent(s.scaleLatent(z)).data, z.data, 1e-6, 1e-5);
  });

  it('state_dict keys are diffusers AutoencoderKL\'s', () => {
    expect([...createVAE(cfg, 0).stateDict().keys()].sort()).toEqual(diffusersVaeKeys(cfg.blockOutChannels, cfg.layersPerBlock).sort());
    const wide = vaePreset('VAE-T', { blockOutChannels: [8, 16], layersPerBlock: 2 });
    expect([...createVAE(wide, 0).stateDict().keys()].sort()).toEqual(diffusersVaeKeys([8, 16], 2).sort());
  });
});

describe('VAE pieces', () => {
  it('Downsample2D(padding 0) pads only right and bottom (scalar convolution reference)', () => {
    const d = new Downsample2D(2, 0, new Rng(1));
    const x = new Rng(2).normal([1, 2, 6, 6]);
    const y = d.forward(x); // (1, 2, 3, 3)
    expect(y.shape).toEqual([1, 2, 3, 3]);
    const w = d.conv.weight.data, b = d.conv.bias!.data, xd = x.data;
    const at = (c: number, i: number, j: number): number => (i < 6 && j < 6 ? xd[(c * 6 + i) * 6 + j] : 0);
    const want: number[] = [];
    for (let o = 0; o < 2; o++) {
      for (let oy = 0; oy < 3; oy++) {
        for (let ox = 0; ox < 3; ox++) {
          let s = b[o];
          for (let c = 0; c < 2; c++) for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) s += w[((o * 2 + c) * 3 + ky) * 3 + kx] * at(c, 2 * oy + ky, 2 * ox + kx);
          want.push(s);
        }
      }
    }
    expectClose('downsample', y.data, want, 1e-5, 1e-5);
  });

  it('one backward reaches every parameter', () => {
    const m = createVAE(cfg, 2);
    const x = images(2, 3);
    const out = m.forward(x, new Rng(1));
    backward(add(mseLoss(out.recon, x), mul(gaussianKL(out.mean, out.logvar), 1e-3)));
    for (const [name, p] of m.namedParameters()) {
      expect(p.grad, name).not.toBeNull();
      expect(p.grad!.toArray().some((v) => v !== 0), `${name} has an all-zero gradient`).toBe(true);
    }
  });
});

describe('loadSdVae', () => {
  const src = createVAE(cfg, 9);
  for (const [, t] of src.stateDict()) t.data.set(new Rng(t.size + 1).normalArray(t.size, 0, 0.2));
  for (const [k, t] of src.stateDict()) if (/norm.*\.weight$/.test(k)) t.data.set(t.data.map((v) => 1 + v));
  const x = images(2, 5);
  const ref = noGrad(() => src.eval().forward(x));

  const same = (m: ReturnType<typeof loadSdVae>): void => {
    const out = noGrad(() => m.forward(x));
    expectClose('mean', out.mean.data, ref.mean.data, 0, 0);
    expectClose('recon', out.recon.data, ref.recon.data, 0, 0);
  };

  it('current diffusers names: strict load, outputs identical, groups from the option', () => {
    const file = join(dir, 'vae.safetensors');
    const sd = src.stateDict();
    writeSafetensors(file, new Map(diffusersVaeKeys(cfg.blockOutChannels, 1).map((k) => [k, sd.get(k)!])));
    const m = loadSdVae(file, { normNumGroups: 4, scalingFactor: 1 });
    expect(m.config).toEqual(cfg);
    same(m);
  });

  it('pre-0.15 attention names with 1x1-conv shaped weights', () => {
    const file = join(dir, 'vae-old.safetensors');
    const old = new Map<string, Tensor>();
    for (const [k, t] of src.stateDict()) {
      const name = k.replace('.to_q.', '.query.').replace('.to_k.', '.key.').replace('.to_v.', '.value.').replace('.to_out.0.', '.proj_attn.');
      old.set(name, name !== k && k.endsWith('.weight') ? tensor(t.data, [...t.shape, 1, 1]) : t);
    }
    writeSafetensors(file, old);
    same(loadSdVae(file, { normNumGroups: 4 }));
  });

  it('saveSdVae keeps groups and scaling in the metadata; a missing key is named', () => {
    const file = join(dir, 'saved.safetensors');
    saveSdVae(src, file);
    same(loadSdVae(file));
    const bad = join(dir, 'bad.safetensors');
    writeSafetensors(bad, new Map([...src.stateDict()].filter(([k]) => k !== 'decoder.mid_block.attentions.0.to_k.bias')));
    expect(() => loadSdVae(bad, { normNumGroups: 4 })).toThrow(/missing keys: decoder\.mid_block\.attentions\.0\.to_k\.bias/);
  });
});

describe('VAE training', () => {
  it('reconstruction loss falls over 30 AdamW steps on the built-in shapes', () => {
    const m = createVAE(cfg, 3);
    const opt = new AdamW(m.namedParameters(), { lr: 3e-3, weightDecay: 0 });
    const x = images(2, 11);
    const rng = new Rng(5);
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) {
      losses.push(tidy(() => {
        const out = m.forward(x, rng);
        const rec = mseLoss(out.recon, x);
        backward(add(rec, mul(gaussianKL(out.mean, out.logvar), 1e-4)));
        return rec.item();
      }));
      opt.step();
      m.zeroGrad();
    }
    const first = losses.slice(0, 3).reduce((a, b) => a + b) / 3, last = losses.slice(-3).reduce((a, b) => a + b) / 3;
    expect(last, `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`).toBeLessThan(0.6 * first);
  });
});
