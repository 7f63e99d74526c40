// Property tests of RAE stage 1 (src/methods/rae; methods-b §5 "Invariants to property-test"):
// (a) the encoder's parameters receive no gradient and its tokens do not depend on the mode; the
//     decoder's noise augmentation appears in train mode only;
// the latent is the encoder's LayerNorm WITHOUT its affine: tokensOf(x_norm_patchtokens) equals
//     LN_noaffine(x_prenorm) for any γ, β (RAE removes the affine);
// the one-tape split of loss.ts: D's hinge moves only D, the generator term only the decoder, the
//     total gives D exactly the hinge's gradient and the decoder exactly its own terms' gradients;
//     before disc_start / gan_start the terms are 0 and D is not run (its BatchNorm stats unchanged);
//     the adaptive weight is 0.75·clamp(‖∇nll‖/(‖∇g‖ + 1e-6), 0, 1e4) on decoder_pred.weight;
// D's input quantisation (clamped, on the 8-bit grid, idempotent, within half a level);
// the reconstruction grid renders the reference tokens, whatever the noise;
// reconstructionError computes MSE and PSNR from the reconstructions (not a stored number).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { grad } from '../../src/autograd/grad.ts';
import { backward, layerNorm, mean, mseLoss, abs, sub, add, mul } from '../../src/autograd/index.ts';
import { Tape, withTape, discardTape } from '../../src/autograd/tape.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { createViT, vitPreset } from '../../src/models/vit.ts';
import { FrozenEncoder } from '../../src/methods/encoder.ts';
import { linear } from '../../src/diffusion/index.ts';
import { RaeDecoderModel, createRaeDecoderModel } from '../../src/methods/rae/model.ts';
import { quantize8bit, raeDecoderLoss, RAE_ADAPTIVE_EPS } from '../../src/methods/rae/loss.ts';
import { RaeSection, rae, ganSchedule } from '../../src/methods/rae/index.ts';
import { raeReconstruct, reconstructionError } from '../../src/methods/rae/recon.ts';
import { generatorLoss } from '../../src/models/ganLoss.ts';
import { hiddenAfterBlock } from '../../src/methods/partialForward.ts';
import type { ImageDataset } from '../../src/data/index.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { perturb } from './tiny.ts';
import { drawSamples, gridLabels } from '../../src/build/draw.ts';

// 16 px, 1 channel; encoder patch 4 → 4×4×8 tokens; decoder width 16, 1 block, patch 4.
const config = sitPreset('SiT-T/2', { depth: 1, hiddenSize: 16, numHeads: 2, inputSize: 16, inChannels: 1, patchSize: 4, numClasses: 3 });

function encoder(seed: number): FrozenEncoder {
  const vit = createViT(vitPreset('ViT-T/4', { imgSize: 16, patchSize: 4, inChannels: 1, embedDim: 8, depth: 1, numHeads: 2 }), seed);
  perturb(vit, seed + 7, 0.3); // γ, β of the final norm far from 1, 0
  return new FrozenEncoder(vit, { normalization: 'identity', grid: 4 });
}

function model(seed: number, enc: FrozenEncoder): RaeDecoderModel {
  const m = createRaeDecoderModel(config, { tokenDim: 8, disc: 'PatchGAN-T', refPerClass: 2 }, seed);
  m.setEncoderNorm(enc.vit.norm.weight!.data, enc.vit.norm.bias!.data);
  perturb(m.decoder, seed + 3, 0.05);
  return m;
}

const images = (seed: number, b = 4): Tensor => new Rng(seed).normal([b, 1, 16, 16]);
const section = (over: Partial<RaeSection> = {}): RaeSection => RaeSection.parse({ perceptual_weight: 0, ...over });
const W = { l1: 1, l2: 0.5, perceptual: 0, gan: 0.75, ganStart: 1, discStart: 1 };

const gradsOf = (ps: [string, Tensor][]): Map<string, Float32Array | Float64Array> => new Map(ps.filter(([, p]) => p.grad).map(([k, p]) => [k, p.grad!.data.slice()]));
const nonZero = (ps: [string, Tensor][]): string[] => ps.filter(([, p]) => p.grad?.data.some((v) => v !== 0)).map(([k]) => k);

/** Backward of `pick(terms)` on a fresh tape; returns nothing (grads land in .grad). */
function backwardOf(m: RaeDecoderModel, x: Tensor, step: number, pick: (t: ReturnType<typeof raeDecoderLoss>['terms']) => Tensor, w = W): void {
  const tape = new Tape();
  try {
    const loss = withTape(tape, () => pick(raeDecoderLoss(m, x, m.forward(m.tokensOf(encoder(11).features(x).patch)), step, w).terms));
    backward(loss, { tape });
  } finally { discardTape(tape); }
}

describe('RAE stage 1: the latent and the noise (a)', () => {
  it('tokensOf undoes the final LayerNorm affine: equals LN without affine of x_prenorm', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1000 }), (seed) => {
      const enc = encoder(seed), m = model(seed, enc), x = images(seed + 1, 2);
      const out = enc.vit.forward(enc.preprocess(x));
      const pre = out.prenorm; // (B, 1+N, D)
      const ref = layerNorm(pre, 8, null, null, enc.vit.norm.eps); // (B, 1+N, D)
      const n = 16, d = 8, got = m.tokensOf(enc.features(x).patch);
      const want = new Float32Array(2 * n * d);
      for (let b = 0; b < 2; b++) want.set(ref.data.subarray((b * (n + 1) + 1) * d, (b + 1) * (n + 1) * d), b * n * d);
      expectClose('LN_noaffine', got.data, want, 1e-4, 1e-4);
    }), { numRuns: 5 });
  });

  it('the encoder gets no gradient and ignores the mode; noise only in train mode', () => {
    const enc = encoder(3), m = model(4, enc), x = images(5);
    const s = section({ noise_tau: 0.8 }), b = { input: x, eps: x, t: new Float64Array(4), y: new Int32Array(4), taps: [], feats: enc.features(x), draws: { rae: { step: 1, noiseSeed: 9 } } };
    enc.vit.train();
    expect(Array.from(enc.features(x).patch.data)).toEqual(Array.from(b.feats.patch.data));
    enc.vit.eval();
    m.eval();
    const plain = noTape(() => rae.backbone!.forward(s, m, b, linear, new Rng(0)).out);
    expect(Array.from(plain.data)).toEqual(Array.from(m.forward(m.tokensOf(b.feats.patch)).data));
    m.train();
    const tape = new Tape();
    const { f, loss } = withTape(tape, () => {
      const f = rae.backbone!.forward(s, m, b, linear, new Rng(0));
      return { f, loss: add(mean(f.out), f.terms.l1.value) };
    });
    expect(Array.from(f.out.data)).not.toEqual(Array.from(plain.data));
    backward(loss, { tape });
    discardTape(tape);
    expect(enc.vit.parameters().every((p) => !p.grad || p.grad.data.every((v) => v === 0))).toBe(true);
    expect(nonZero(m.decoder.namedParameters()).length).toBeGreaterThan(0);
  });
});

function noTape<T>(fn: () => T): T {
  const tape = new Tape();
  try { return withTape(tape, fn); } finally { discardTape(tape); }
}

describe('RAE stage 1: one tape, two networks', () => {
  it('D\'s hinge moves only D; the generator term only the decoder; the total gives each its own gradient', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1000 }), (seed) => {
      const enc = encoder(11), x = images(seed);
      const mk = () => model(seed, enc);
      // D alone.
      const a = mk(); backwardOf(a, x, 1, (t) => t.disc.value);
      expect(nonZero(a.decoder.namedParameters())).toEqual([]);
      expect(nonZero(a.disc.namedParameters()).length).toBeGreaterThan(0);
      // Generator term alone.
      const g = mk(); backwardOf(g, x, 1, (t) => t.gan.value);
      expect(nonZero(g.disc.namedParameters())).toEqual([]);
      expect(nonZero(g.decoder.namedParameters()).length).toBeGreaterThan(0);
      // The weighted total vs each network's own part.
      const total = (t: ReturnType<typeof raeDecoderLoss>['terms']): Tensor => Object.values(t).reduce<Tensor>((s, { value, weight }) => add(s, mul(value, weight)), tensor([0], []));
      const all = mk(); backwardOf(all, x, 1, total);
      const own = mk(); backwardOf(own, x, 1, (t) => add(add(mul(t.l1.value, t.l1.weight), mul(t.gan.value, t.gan.weight)), t.disc.value));
      for (const [k, v] of gradsOf(a.disc.namedParameters())) expectClose(`D ${k}`, gradsOf(all.disc.namedParameters()).get(k)!, v, 1e-6, 1e-5);
      expect(gradsOf(own.decoder.namedParameters()).size).toBe(own.decoder.parameters().length);
      expect(gradsOf(a.disc.namedParameters()).size).toBe(a.disc.parameters().length);
      for (const [k, v] of gradsOf(own.decoder.namedParameters())) expectClose(`decoder ${k}`, gradsOf(all.decoder.namedParameters()).get(k)!, v, 1e-6, 1e-5);
      for (const p of [...all.disc.parameters(), ...a.disc.parameters()]) expect(p.requiresGrad).toBe(true);
    }), { numRuns: 3 });
  });

  it('before disc_start / gan_start: the terms are 0 at weight 0 and D is not run', () => {
    const enc = encoder(11), m = model(2, enc), x = images(3);
    const stats = () => m.disc.namedBuffers().map(([, t]) => Array.from(t.data));
    const before = stats();
    const r = noTape(() => raeDecoderLoss(m, x, m.forward(m.tokensOf(enc.features(x).patch)), 4, { ...W, discStart: 5, ganStart: 6 }));
    expect([r.terms.disc.weight, r.terms.gan.weight, r.terms.disc.value.item(), r.terms.gan.value.item(), r.ganWeight]).toEqual([0, 0, 0, 0, 0]);
    expect(stats()).toEqual(before);
    const after = noTape(() => raeDecoderLoss(m, x, m.forward(m.tokensOf(enc.features(x).patch)), 5, { ...W, discStart: 5, ganStart: 6 }));
    expect(after.terms.disc.weight).toBe(1);
    expect(after.terms.gan.weight).toBe(0);
    expect(stats()).not.toEqual(before);
  });

  it('the adaptive weight is 0.75 · ‖∇nll‖ / (‖∇g‖ + 1e-6) on decoder_pred.weight', () => {
    const enc = encoder(11), m = model(6, enc), x = images(7);
    const tape = new Tape();
    withTape(tape, () => {
      const recon = m.forward(m.tokensOf(enc.features(x).patch));
      const r = raeDecoderLoss(m, x, recon, 1, W);
      const nll = add(mean(abs(sub(recon, x))), mul(mseLoss(recon, x), W.l2));
      // D in train mode normalises with the batch's statistics: the same logits as in raeDecoderLoss.
      const w = m.decoder.decoder_pred.weight;
      const [gn] = grad(nll, [w], { tape });
      const [gg] = grad(generatorLoss(m.disc.forward(recon)), [w], { tape });
      const norm = (t: Tensor | null) => Math.sqrt(Array.from(t!.data).reduce((s, v) => s + v * v, 0));
      const want = 0.75 * Math.min(Math.max(norm(gn) / (norm(gg) + RAE_ADAPTIVE_EPS), 0), 1e4);
      expect(Math.abs(r.ganWeight - want) / want).toBeLessThan(1e-4);
    });
    discardTape(tape);
  });

  it('D reads reconstructions clamped to [−1, 1] on the 8-bit grid', () => {
    fc.assert(fc.property(fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 1, maxLength: 64 }), (v) => {
      const q = quantize8bit(tensor(v, [v.length]));
      for (let i = 0; i < v.length; i++) {
        const c = Math.min(1, Math.max(-1, v[i])), k = (q.data[i] + 1) * 127.5;
        expect(Math.abs(k - Math.round(k))).toBeLessThan(1e-3);
        expect(Math.abs(q.data[i] - c)).toBeLessThanOrEqual(1 / 255 + 1e-6);
      }
      expect(Array.from(quantize8bit(q).data)).toEqual(Array.from(q.data));
    }));
  });
});

describe('RAE stage 1: schedule, grid, reconstruction error', () => {
  it('GAN steps default to RAE\'s epochs 8 and 6 of 16; a GAN term before D and evaluation are refused naming the field', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 100000 }), (steps) => {
      const { ganStart, discStart } = ganSchedule(section(), steps);
      expect(ganStart).toBe(Math.ceil(steps / 2) + 1);
      expect(discStart).toBeLessThanOrEqual(ganStart);
    }));
    expect(() => rae.check!(section({ gan_start: 3, disc_start: 5 }), { model: {}, train: { steps: 10 } } as never)).toThrow(/rae\.gan_start \(3\) is before rae\.disc_start \(5\)/);
    expect(() => rae.check!(section(), { model: {}, train: { steps: 10, eval_every: 5 } } as never)).toThrow(/rae: train\.eval_every is 5/);
    const m = model(1, encoder(11));
    expect(() => hiddenAfterBlock(m, images(1), [0.5, 0.5, 0.5, 0.5], [0, 0, 0, 0], 1)).toThrow(/rae \(stage 1\): no hidden state/);
  });

  it('the grid renders sample i of class c from c\'s reference tokens (cycling), whatever the noise', () => {
    const enc = encoder(11), m = model(8, enc);
    m.ref_tokens.data.set(new Rng(1).normalArray(m.ref_tokens.size));
    m.eval();
    const y = tensor([2, 0, 2, 2], [4]);
    const a = m.drawOwn(new Rng(2).normal([4, 1, 16, 16]), y, { sampler: 'euler', steps: 1, cfg: 1, guidance_low: 0, guidance_high: 1 });
    const b = m.drawOwn(new Rng(3).normal([4, 1, 16, 16]), y, { sampler: 'heun', steps: 9, cfg: 1, guidance_low: 0, guidance_high: 1 });
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    const per = 16 * 8, img = 256, row = (r: number) => m.forward(tensor(m.ref_tokens.data.slice(r * per, (r + 1) * per), [1, 16, 8])).data;
    [[0, 4], [1, 0], [2, 5], [3, 4]].forEach(([i, r]) => expectClose(`sample ${i}`, a.data.subarray(i * img, (i + 1) * img), row(r), 1e-6, 1e-5));
  });

  it('reconstructionError: 0 / ∞ dB for the identity, the clamped MSE otherwise, PSNR = 10·log10(4 / MSE)', () => {
    const rows = Array.from({ length: 7 }, (_, i) => new Rng(i).uniformArray(256).map((v) => 2 * v - 1));
    const data: ImageDataset = { name: 't', count: 7, channels: 1, height: 16, width: 16, numClasses: 1, classNames: ['a'], label: () => 0, get: (i, out, o) => { out.set(rows[i], o); return 0; } };
    const id = reconstructionError((x) => x, data, 100, 3);
    expect([id.images, id.mse, id.psnr]).toEqual([7, 0, Infinity]);
    fc.assert(fc.property(fc.double({ min: -0.5, max: 0.5, noNaN: true }), fc.integer({ min: 1, max: 7 }), (c, n) => {
      const r = reconstructionError((x) => add(x, c), data, n, 2);
      let s = 0;
      for (let i = 0; i < n; i++) for (const v of rows[i]) { const d = Math.min(1, Math.max(-1, v + c)) - v; s += d * d; }
      expect(r.images).toBe(n);
      expect(Math.abs(r.mse - s / (n * 256))).toBeLessThan(1e-9 + 1e-6 * r.mse);
      if (r.mse > 0) expect(r.psnr).toBeCloseTo(10 * Math.log10(4 / r.mse), 9);
    }), { numRuns: 20 });
    const enc = encoder(11), m = model(9, enc).eval();
    const e = reconstructionError(raeReconstruct(m, enc), data, 5, 2);
    expect(e.images).toBe(5);
    expect(Number.isFinite(e.mse) && e.mse > 0 && Number.isFinite(e.psnr)).toBe(true);
  });
});


describe('reconstruction grid: the n-th sample of a class is its n-th reference, whatever the batches', () => {
  it('drawn in batches that split a class row (the sample pool\'s chunks), the grid equals one batch, and a row shows distinct references', () => {
    const m = model(21, encoder(21));
    // Two references per class with distinct tokens: the grid's two columns must differ.
    m.ref_tokens.data.set(new Rng(5).normal([m.ref_tokens.size]).data as Float32Array);
    const s = { sampler: 'euler' as const, steps: 1, cfg: 1, guidance_low: 0, guidance_high: 1, per_class: 2 };
    const labels = gridLabels([0, 1, 2], 2);
    const whole = drawSamples(m, s, { seed: 3, labels, batch: 100 });
    for (const batch of [1, 3, 5]) expect(Array.from(drawSamples(m, s, { seed: 3, labels, batch }))).toEqual(Array.from(whole));
    const per = 16 * 16;
    for (let c = 0; c < 3; c++) {
      const a = whole.subarray(2 * c * per, (2 * c + 1) * per), b = whole.subarray((2 * c + 1) * per, (2 * c + 2) * per);
      expect(Array.from(a)).not.toEqual(Array.from(b));
    }
  });
});
