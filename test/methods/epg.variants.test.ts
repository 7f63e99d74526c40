// EPG (src/methods/epg): the variants behind spec fields whose defaults keep today's runs —
//   (g) the interpolated consistency temperature: τ_min at σ_min, τ_max at σ_max, monotone between;
//       the cosine τ_max(k); the constant default is `temperature` whatever σ
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Rng } from '../../src/tensor/rng.ts';
import { parseSiTConfig, type SiTConfig } from '../../src/models/config.ts';
import { EDM, karrasSigmas } from '../../src/diffusion/ve.ts';
import { interpolatedTau, tauMaxAt } from '../../src/methods/epg/loss.ts';
import { EpgPretrainModel } from '../../src/methods/epg/model.ts';
import { EpgSection, consistencyTau, epg, pretrainTerms } from '../../src/methods/epg/index.ts';

const CONFIG: SiTConfig = parseSiTConfig({ family: 'SiT', inputSize: 8, inChannels: 1, patchSize: 4, hiddenSize: 8, depth: 2, numHeads: 2, mlpRatio: 2, numClasses: 3, classDropoutProb: 0.1, learnSigma: false, timeScale: 1 });
const section = (over: Record<string, unknown> = {}) => EpgSection.parse({ stage: 'pretrain', projector_dim: 6, projector_out: 5, curriculum: [2, 8], ...over });
const spec = (s: EpgSection) => ({ name: 't', methods: ['epg'], model: { learn_sigma: false }, train: { batch_size: 4, eval_every: 0 }, sample: { sampler: 'euler' }, epg: s }) as never;

describe('(g) the interpolated temperature', () => {
  it('τ_min at σ_min, τ_max at σ_max, monotone in σ̃ between (non-decreasing when τ_max ≥ τ_min)', () => {
    fc.assert(fc.property(
      fc.double({ min: 1e-4, max: 1, noNaN: true }), fc.double({ min: 1.5, max: 200, noNaN: true }),
      fc.double({ min: 0.01, max: 2, noNaN: true }), fc.double({ min: 0.01, max: 2, noNaN: true }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 12 }),
      (sMin, sMax, tMin, tMax, us) => {
        expect(interpolatedTau(sMin, tMin, tMax, sMin, sMax)).toBeCloseTo(tMin, 12);
        expect(interpolatedTau(sMax, tMin, tMax, sMin, sMax)).toBeCloseTo(tMax, 12);
        const sig = us.map((u) => sMin + u * (sMax - sMin)).sort((a, b) => a - b);
        const tau = sig.map((v) => interpolatedTau(v, tMin, tMax, sMin, sMax));
        for (let i = 1; i < tau.length; i++) {
          const step = (tau[i] - tau[i - 1]) * Math.sign(tMax - tMin);
          expect(step).toBeGreaterThanOrEqual(-1e-12);
        }
        for (const t of tau) { expect(t).toBeGreaterThanOrEqual(Math.min(tMin, tMax) - 1e-12); expect(t).toBeLessThanOrEqual(Math.max(tMin, tMax) + 1e-12); }
      }), { numRuns: 200, seed: 41 });
  });

  it('the step uses σ̃ = σ/shift (the unshifted grid point): τ_min at the grid end, τ_max at its start; constant is `temperature` at every σ', () => {
    const s = section({ tau_schedule: 'interpolated', temperature: 0.1, tau_max: 0.5 });
    const shift = 8 / 64, g = karrasSigmas(9, shift);
    expect(consistencyTau(s, g[0], shift, 1, 10)).toBeCloseTo(0.5, 12);
    expect(consistencyTau(s, g[8], shift, 1, 10)).toBeCloseTo(0.1, 12);
    const c = section();
    for (const v of g) expect(consistencyTau(c, v, shift, 3, 10)).toBe(c.temperature);
  });

  it('the cosine τ_max(k) starts at tau_max, reaches tau_max − end at k = 2K/3, then is `end`; constant ignores k', () => {
    fc.assert(fc.property(fc.integer({ min: 3, max: 3000 }), fc.double({ min: 0.2, max: 1, noNaN: true }), fc.double({ min: 0.01, max: 0.19, noNaN: true }), (K, start, end) => {
      expect(tauMaxAt('cosine', 0, K, start, end)).toBeCloseTo(start, 12);
      expect(tauMaxAt('cosine', (2 * K) / 3, K, start, end)).toBeCloseTo(start - end, 12);
      expect(tauMaxAt('cosine', K, K, start, end)).toBe(end);
      for (let k = 0; k <= K; k += Math.max(1, Math.floor(K / 7))) {
        expect(tauMaxAt('constant', k, K, start, end)).toBe(start);
        expect(tauMaxAt('cosine', k, K, start, end)).toBeGreaterThan(0);
      }
    }), { numRuns: 100, seed: 42 });
  });

  it('the stage-1 consistency term is InfoNCE at the step’s τ (and the default at `temperature`, the terms unchanged)', () => {
    const rng = new Rng(3), x = rng.normal([4, 1, 8, 8], 0, 0.5), eps = rng.normal([4, 1, 8, 8], 0, 1);
    const mk = () => { const m = new EpgPretrainModel(CONFIG, { projectorDim: 6, projectorOut: 5, refImages: 1, numClasses: 3 }, new Rng(1)).eval(); m.totalSteps = 10; return m; };
    const d = { step: 4, u: 0.2, seed: 7 };
    const a = pretrainTerms(section(), mk(), x, [0, 1, 2, 0], eps, d);
    const b = pretrainTerms(section({ tau_schedule: 'interpolated', tau_max: 0.7 }), mk(), x, [0, 1, 2, 0], eps, d);
    expect(a.tau).toBe(0.1);
    expect(b.tau).toBeGreaterThan(0.1);
    expect(b.tau).toBeCloseTo(interpolatedTau(b.sigma / (8 / 64), 0.1, 0.7, EDM.sigmaMin, EDM.sigmaMax), 12);
    expect(b.contrastive.item()).toBe(a.contrastive.item()); // the contrastive term keeps `temperature`
    expect(b.consistency.item()).not.toBe(a.consistency.item());
  });

  it('a cosine τ_max that would reach 0 is refused, naming the fields', () => {
    const s = section({ tau_schedule: 'interpolated', tau_max_schedule: 'cosine', tau_max: 0.1, tau_max_end: 0.2 });
    expect(() => epg.check!(s, spec(s))).toThrow(/epg\.tau_max .*tau_max_end/);
  });
});
