// Property tests of SVG (src/methods/svg, src/methods/svg-dit; methods-b §6 "Invariants to
// property-test", §0 P2):
// (a) the frozen encoder gets no gradient; the residual branch (ViT, head, mask vector) gets gradient
//     only through the reconstruction/GAN terms — D's hinge alone moves only D;
// (b) after the distribution matching, the residual's scalar mean-of-channel-means and
//     mean-of-channel-stds equal the encoder tokens' (batch statistics, any batch);
// (c) eval mode never masks; train mode masks whole samples with the mask vector, a fraction → 0.1;
// (d) channel order: the latent's first d channels are exactly the encoder's tokens (also through the
//     latent space: its first d normalised channels are the encoder tokens normalised);
// (e) τ_s with s < 1 on the t = 1-data convention gives E[t] < 0.5; svg-dit's training times in
//     diffactor's time are 1 − τ_a(1 − t) = τ_{1/a}(t) (P2's identity);
// (f) the sampler's grid in SVG's time is τ_b(i/N), increasing from 0 to 1 — read from the times the
//     model is actually called at.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backward, add } from '../../src/autograd/index.ts';
import { Tape, withTape, discardTape, noGrad } from '../../src/autograd/tape.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { createViT, vitPreset } from '../../src/models/vit.ts';
import { FrozenEncoder } from '../../src/methods/encoder.ts';
import { linear } from '../../src/diffusion/index.ts';
import { shiftTime, shiftTimes } from '../../src/diffusion/timeSampling.ts';
import { odeGrid } from '../../src/diffusion/odeSampler.ts';
import { SvgAutoencoderModel, createSvgAutoencoder } from '../../src/methods/svg/model.ts';
import { SvgSection, svg, maskFlags } from '../../src/methods/svg/index.ts';
import { channelMeanStd, matchDistribution } from '../../src/methods/svg/matching.ts';
import { SvgLatentSpace } from '../../src/methods/svg/latent.ts';
import { channelStats, normaliseChannels } from '../../src/methods/tokenLatent.ts';
import { SvgDiT } from '../../src/methods/svg-dit/model.ts';
import { svgTrainingTimes } from '../../src/methods/svg-dit/index.ts';
import { perturb } from './tiny.ts';

// 16 px, 1 channel; encoder patch 4 → 4×4×8 tokens; residual 3 channels (1 block of width 8); decoder width 16, 1 block.
const config = sitPreset('SiT-T/2', { depth: 1, hiddenSize: 16, numHeads: 2, inputSize: 16, inChannels: 1, patchSize: 4, numClasses: 3 });
const D = 8, R = 3;

function encoder(seed: number): FrozenEncoder {
  const vit = createViT(vitPreset('ViT-T/4', { imgSize: 16, patchSize: 4, inChannels: 1, embedDim: D, depth: 1, numHeads: 2 }), seed);
  perturb(vit, seed + 7, 0.3);
  return new FrozenEncoder(vit, { normalization: 'identity', grid: 4 });
}

function model(seed: number): SvgAutoencoderModel {
  const m = createSvgAutoencoder(config, { tokenDim: D, residual: { channels: R, width: 8, depth: 1, heads: 2 }, disc: 'PatchGAN-T', refPerClass: 2 }, seed);
  perturb(m.decoder, seed + 3, 0.05);
  perturb(m.residual_head, seed + 4, 0.2);
  return m;
}

const images = (seed: number, b = 4): Tensor => new Rng(seed).normal([b, 1, 16, 16]);
const section = (over: Partial<SvgSection> = {}): SvgSection => SvgSection.parse({ perceptual_weight: 0, gan_start: 1, ...over });
const nonZero = (ps: [string, Tensor][]): string[] => ps.filter(([, p]) => p.grad?.data.some((v) => v !== 0)).map(([k]) => k);

function batch(enc: FrozenEncoder, x: Tensor, step: number, maskSeed = 9) {
  return { input: x, eps: x, t: new Float64Array(x.shape[0]), y: new Int32Array(x.shape[0]), taps: [], feats: enc.features(x), draws: { svg: { step, maskSeed } } };
}

/** fn on a fresh tape; then backward of back(result), recorded on the same tape. */
function onTape<T>(fn: () => T, back?: (r: T) => Tensor): T {
  const tape = new Tape();
  try {
    const { r, loss } = withTape(tape, () => { const r = fn(); return { r, loss: back ? back(r) : null }; });
    if (loss) backward(loss, { tape });
    return r;
  } finally { discardTape(tape); }
}

describe('SVG stage 1: gradients (a)', () => {
  it('the encoder gets none; the residual branch, mask vector and decoder get the reconstruction\'s; D\'s hinge moves only D', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1000 }), (seed) => {
      const enc = encoder(seed), x = images(seed + 1, 6), s = section({ mask_prob: 0.5 });
      // A seed whose flags mask some but not all of the 6 samples, so the mask vector is on the path.
      let maskSeed = 0;
      while (!(maskFlags(maskSeed, 6, 0.5).some((f) => f === 1) && maskFlags(maskSeed, 6, 0.5).some((f) => f === 0))) maskSeed++;
      const all = model(seed).train();
      const f = onTape(() => svg.backbone!.forward(s, all, batch(enc, x, 1, maskSeed), linear, new Rng(0)),
        (r) => add(add(r.terms.l1.value, r.terms.gan.value), r.terms.disc.value));
      expect(Object.keys(f.terms).sort()).toEqual(['disc', 'gan', 'l1']);
      expect(enc.vit.parameters().every((p) => !p.grad || p.grad.data.every((v) => v === 0))).toBe(true);
      const trained = nonZero(all.namedParameters());
      for (const p of ['mask_token', 'residual_head.2.weight', 'residual.blocks.0.attn.qkv.weight', 'decoder.decoder_pred.weight']) expect(trained).toContain(p);
      // D's hinge alone: nothing of the autoencoder moves.
      const d = model(seed).train();
      onTape(() => svg.backbone!.forward(s, d, batch(enc, x, 1, maskSeed), linear, new Rng(0)), (r) => r.terms.disc.value);
      const moved = nonZero(d.namedParameters());
      expect(moved.length).toBeGreaterThan(0);
      expect(moved.every((k) => k.startsWith('disc.'))).toBe(true);
      // The generator term alone: D does not move, the residual does.
      const g = model(seed).train();
      onTape(() => svg.backbone!.forward(s, g, batch(enc, x, 1, maskSeed), linear, new Rng(0)), (r) => r.terms.gan.value);
      expect(nonZero(g.disc.namedParameters())).toEqual([]);
      expect(nonZero(g.residual.namedParameters()).length).toBeGreaterThan(0);
    }), { numRuns: 3 });
  });

  it('before gan_start the GAN terms are 0 and D is not run', () => {
    const enc = encoder(1), m = model(2).train(), x = images(3);
    m.ganStart = 5; // what the method sets from svg.gan_start
    const before = new Map(m.disc.namedBuffers().map(([k, t]) => [k, Array.from(t.data)]));
    const f = onTape(() => svg.backbone!.forward(section({ gan_start: 5 }), m, batch(enc, x, 4), linear, new Rng(0)));
    expect([f.terms.gan.weight, f.terms.disc.weight, f.terms.gan.value.item(), f.terms.disc.value.item()]).toEqual([0, 0, 0, 0]);
    for (const [k, t] of m.disc.namedBuffers()) expect(Array.from(t.data), k).toEqual(before.get(k));
  });
});

describe('SVG stage 1: the distribution matching (b)', () => {
  it('the matched residual has the encoder tokens\' scalar mean and std, whatever the batch and scales', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 2, max: 9 }), fc.double({ min: -3, max: 3, noNaN: true }), fc.double({ min: 0.01, max: 5, noNaN: true }), fc.integer({ min: 0, max: 1e6 }), (B, N, mu, sd, seed) => {
      const rng = new Rng(seed);
      const hEnc = rng.normal([B, N, 7], mu, sd, 'float64'), hRes = rng.normal([B, N, 3], -mu / 2 + 1, 0.1 + sd * 3, 'float64');
      const e = channelMeanStd(hEnc), r = channelMeanStd(noGrad(() => matchDistribution(hEnc, hRes)));
      expect(r.mean).toBeCloseTo(e.mean, 8);
      const raw = channelMeanStd(hRes).std; // σ_r + 1e-6 in the denominator: σ_d·σ_r/(σ_r + 1e-6)
      expect(Math.abs(r.std - e.std * raw / (raw + 1e-6))).toBeLessThan(1e-9 * e.std);
      expect(Math.abs(r.std - e.std)).toBeLessThanOrEqual(e.std * (1e-6 / raw) + 1e-12); // equal up to the eps's share
    }), { numRuns: 40 });
  });
});

describe('SVG stage 1: masking (c) and channel order (d)', () => {
  it('eval never masks; train masks whole samples with the mask vector; the fraction → 0.1', () => {
    const enc = encoder(4), m = model(5), x = images(6, 5), feats = enc.features(x).patch;
    const plain = noGrad(() => m.latent(feats, x, null));
    // The method's forward in eval mode uses no flags even when every flag would fire.
    m.eval();
    const s = section({ mask_prob: 1, gan_weight: 0 });
    const ev = onTape(() => svg.backbone!.forward(s, m, batch(enc, x, 1), linear, new Rng(0)).out);
    expect(Array.from(ev.data)).toEqual(Array.from(noGrad(() => m.forward(plain)).data));
    // Flags [0, 1, 0, 0, 1]: masked samples' residual (before matching) is the mask vector at every token.
    const flags = [0, 1, 0, 0, 1];
    const z = noGrad(() => m.latent(feats, x, flags)); // (5, 16, D + R)
    for (const b of [1, 4]) {
      for (let n = 1; n < 16; n++) for (let c = D; c < D + R; c++) expect(z.data[(b * 16 + n) * (D + R) + c]).toBeCloseTo(z.data[(b * 16) * (D + R) + c], 6);
    }
    // Unmasked samples are not constant over tokens.
    expect(new Set(Array.from({ length: 16 }, (_, n) => z.data[(0 * 16 + n) * (D + R) + D].toFixed(5))).size).toBeGreaterThan(1);
    // The draw's fraction over many samples.
    const f = maskFlags(12345, 20000, 0.1);
    expect(Math.abs(f.reduce((a, v) => a + v, 0) / f.length - 0.1)).toBeLessThan(0.01);
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 1, noNaN: true }), (seed, p) => {
      const g = maskFlags(seed, 64, p);
      if (p === 0) expect(g.every((v) => v === 0)).toBe(true);
      if (p === 1) expect(g.every((v) => v === 1)).toBe(true);
      expect(g.every((v) => v === 0 || v === 1)).toBe(true);
    }), { numRuns: 30 });
  });

  it('the first d channels of the latent are exactly the encoder tokens (model and latent space)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1000 }), fc.boolean(), (seed, masked) => {
      const enc = encoder(seed), m = model(seed + 1), x = images(seed + 2, 3), feats = enc.features(x).patch;
      const z = noGrad(() => m.latent(feats, x, masked ? [1, 0, 1] : null)); // (3, 16, D + R)
      for (let i = 0; i < 3 * 16; i++) for (let c = 0; c < D; c++) expect(z.data[i * (D + R) + c]).toBe(feats.data[i * D + c]);
      // Through the space: channel-major (3, D + R, 4, 4), normalised per channel.
      m.eval();
      const mean = Float64Array.from({ length: D + R }, (_, c) => c / 7 - 0.5), std = Float64Array.from({ length: D + R }, (_, c) => 0.5 + c / 5);
      const space = new SvgLatentSpace('test', m, enc, mean, std);
      const e = space.encode(x).data;
      for (let b = 0; b < 3; b++) for (let c = 0; c < D; c++) for (let n = 0; n < 16; n++) {
        expect(e[(b * (D + R) + c) * 16 + n]).toBeCloseTo((feats.data[(b * 16 + n) * D + c] - mean[c]) / std[c], 5);
      }
    }), { numRuns: 4 });
  });

  it('per-channel statistics and normalise ∘ denormalise = id', () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 5 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 1e6 }), (n, C, P, seed) => {
      const z = Float32Array.from(new Rng(seed).normalArray(n * C * P, 2, 3));
      const { mean, std } = channelStats(z, n, C);
      const y = z.slice();
      normaliseChannels(y, P, mean, std);
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let b = 0; b < n; b++) for (let p = 0; p < P; p++) s += y[(b * C + c) * P + p];
        expect(Math.abs(s / (n * P))).toBeLessThan(1e-5);
      }
      normaliseChannels(y, P, mean, std, true);
      for (let i = 0; i < z.length; i++) expect(y[i]).toBeCloseTo(z[i], 4);
    }), { numRuns: 30 });
  });
});

describe('SVG stage 2: the two time shifts (e), (f)', () => {
  it('s < 1 in SVG\'s time (t = 1 data) gives E[t] < 0.5; diffactor\'s times are 1 − τ_a(1 − t) = τ_{1/a}(t)', () => {
    fc.assert(fc.property(fc.double({ min: 0.05, max: 0.95, noNaN: true }), fc.integer({ min: 0, max: 1e6 }), (a, seed) => {
      const u = new Rng(seed).uniformArray(50);
      const ours = svgTrainingTimes(u, a);
      for (let i = 0; i < u.length; i++) expect(ours[i]).toBeCloseTo(1 - shiftTime(1 - u[i], a), 12);
      // E over t ~ U(0, 1) by the midpoint rule, not a random sample: at a near 1 the mean sits only
      // (1 − a)/6 below 0.5, within a 4000-sample mean's noise.
      const grid = Array.from({ length: 4000 }, (_, i) => (i + 0.5) / 4000);
      expect(shiftTimes(grid, a).reduce((p, v) => p + v, 0) / grid.length).toBeLessThan(0.5);
      expect(svgTrainingTimes(grid, a).reduce((p, v) => p + v, 0) / grid.length).toBeGreaterThan(0.5); // toward noise in diffactor's time
    }), { numRuns: 20 });
    expect(svgTrainingTimes([0.3], 1)[0]).toBeCloseTo(0.3, 15); // τ_1 = id
  });

  it('the sampler calls the model on 1 − τ_b(i/N): SVG\'s grid τ_b(linspace(0, 1)) increasing from 0 to 1', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 12 }), fc.double({ min: 0.05, max: 1, noNaN: true }), (N, b) => {
      const m = new SvgDiT(sitPreset('SiT-T/2', { depth: 1, hiddenSize: 8, numHeads: 2, inputSize: 2, inChannels: 2, patchSize: 1, numClasses: 3 }), new Rng(1)).eval();
      m.sampleShift = b;
      const seen: number[] = [];
      const fwd = m.forward.bind(m);
      m.forward = ((x: Tensor, t: ArrayLike<number>, y: ArrayLike<number>, o?: object) => { seen.push(t[0]); return fwd(x, t, y, o); }) as typeof m.forward;
      m.drawOwn(new Rng(2).normal([1, 2, 2, 2]), tensor([1], [1]), { sampler: 'euler', steps: N, cfg: 1, guidance_low: 0, guidance_high: 1 });
      expect(seen).toHaveLength(N);
      const svgGrid = Array.from(odeGrid(N, 1 / b), (t) => 1 - t);
      expect(svgGrid[0]).toBe(0);
      expect(svgGrid[N]).toBe(1);
      for (let i = 0; i < N; i++) {
        expect(1 - seen[i]).toBeCloseTo(shiftTime(i / N, b), 6); // the sampler hands t over as float32
        expect(svgGrid[i + 1]).toBeGreaterThan(svgGrid[i]);
      }
    }), { numRuns: 20 });
  });
});
