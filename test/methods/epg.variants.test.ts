// EPG (src/methods/epg): the variants behind spec fields whose defaults keep today's runs —
//   (g) the interpolated consistency temperature: τ_min at σ_min, τ_max at σ_max, monotone between;
//       the cosine τ_max(k); the constant default is `temperature` whatever σ
//   stage 'consistency': the boundary f(x, σ_min·shift) = x exactly; the pseudo-Huber's closed form
//       and its limits (→ ‖d‖ − c far out, → ‖d‖²/2c near 0); the target gets no gradient (analytic =
//       central differences with it frozen, ≠ with it moving); ECT's pairs (σ_min ≤ r ≤ t, one ε so
//       one trajectory, the stage non-decreasing, r → t as it grows); float64 gradchecks of the
//       boundary and the objective; the one-/few-step sampler; the spec's checks
//   the official perceptual term (perceptual_weight): the frozen stage-1 network of `init` (not a
//       parameter, no gradient into it), InfoNCE of its projections of f(x_t) and x at σ_min′, its
//       gradient in the model = central differences; refused without stage 'consistency' and init
//   the views' photometric augmentation: deterministic per seed, the range [−1, 1] kept, off = today's
//       views bit for bit (and the crop draws unmoved), brightness a per-image factor in [1 − s, 1 + s],
//       contrast keeps the mean, blur keeps constants and bounds, solarize on view 2 only
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Rng } from '../../src/tensor/rng.ts';
import { parseSiTConfig, type SiTConfig } from '../../src/models/config.ts';
import { EDM, karrasSigmas } from '../../src/diffusion/ve.ts';
import { backward, gradcheck, mul, noGrad, pow, sub, sum, add, div } from '../../src/autograd/index.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import type { Module } from '../../src/nn/module.ts';
import { veNoise } from '../../src/diffusion/ve.ts';
import { interpolatedTau, tauMaxAt } from '../../src/methods/epg/loss.ts';
import { EpgModel, EpgPretrainModel } from '../../src/methods/epg/model.ts';
import { applyBoundary, cmScalings, consistencyObjective, ectR, ectStage, ectWeights, pseudoHuber } from '../../src/methods/epg/consistency.ts';
import { consistencySigmas, sampleConsistency } from '../../src/methods/epg/sampler.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { infoNce } from '../../src/methods/epg/loss.ts';
import { NO_PHOTOMETRIC, augmentView, type Photometric } from '../../src/methods/epg/augment.ts';
import { EpgSection, perceptualTerm, photometricOf, consistencyLoss, consistencyPairs, consistencyTau, epg, finetuneLoss, pretrainTerms } from '../../src/methods/epg/index.ts';
import { expectClose } from '../kernels/expectClose.ts';

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

/** Test only: every parameter and buffer as float64 storage (same values). */
function toFloat64(m: Module): void {
  for (const [, t] of m.stateDict()) {
    const w = t as unknown as { data: Float64Array; dtype: string };
    w.data = Float64Array.from(t.data);
    w.dtype = 'float64';
  }
}

/** Every parameter N(0, std) (the zero-initialised output and adaLN would hide the network). */
function randomise(m: Module, seed: number, std = 0.3): void {
  const rng = new Rng(seed);
  for (const [n, t] of m.namedParameters()) t.data.set(rng.child(n).normalArray(t.size, 0, std));
}

const consistencyModel = (seed: number, over: Record<string, unknown> = {}) => {
  const s = section({ stage: 'consistency', ...over });
  const m = epg.backbone!.build(s, { config: CONFIG, spec: { train: { steps: 100 } } } as never, seed) as EpgModel;
  return { s, m };
};

describe("stage 'consistency'", () => {
  it('the boundary: c_skip(σ_min′) = 1, c_out(σ_min′) = 0, and f(x, σ_min·shift) = x exactly for any weights and x', () => {
    expect(cmScalings(0.001, 0.001)).toEqual({ cSkip: 1, cOut: 0 });
    const { m } = consistencyModel(1);
    expect(m.boundary).toEqual({ sigmaMin: EDM.sigmaMin * 8 / 64, sigmaData: 0.5 });
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 1e6 }), (B, seed) => {
      randomise(m, seed);
      const x = new Rng(seed + 1).normal([B, 1, 8, 8], 0, 2);
      const sig = new Float64Array(B).fill(m.boundary!.sigmaMin);
      const out = m.denoise(x, sig, Int32Array.from({ length: B }, (_, i) => i % 3));
      expect(Array.from(out.data)).toEqual(Array.from(x.data));
      // away from the boundary the network shows
      const far = m.denoise(x, new Float64Array(B).fill(1), Int32Array.from({ length: B }, (_, i) => i % 3));
      expect(Array.from(far.data)).not.toEqual(Array.from(x.data));
    }), { numRuns: 12, seed: 51 });
  });

  it('the pseudo-Huber: √(‖d‖² + c²) − c per sample; ρ − ‖d‖ → −c far out, ρ/(‖d‖²/2c) → 1 near 0; ≥ 0, 0 only at d = 0', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 20 }), fc.double({ min: 1e-3, max: 1, noNaN: true }), fc.integer({ min: 0, max: 1e6 }), (B, D, c, seed) => {
      const d = new Rng(seed).normal([B, D], 0, 1, 'float64');
      const rho = pseudoHuber(d, c).data;
      for (let b = 0; b < B; b++) {
        const n2 = Array.from(d.data.slice(b * D, (b + 1) * D)).reduce((a, v) => a + v * v, 0);
        expect(rho[b]).toBeCloseTo(Math.sqrt(n2 + c * c) - c, 12);
        expect(rho[b]).toBeGreaterThan(0);
        // scaled so that ‖λd‖ = 1e6·c (far) and 1e-4·c (near)
        const far = (1e6 * c) / Math.sqrt(n2), near = (1e-4 * c) / Math.sqrt(n2);
        const big = pseudoHuber(mul(d, far), c).data[b], small = pseudoHuber(mul(d, near), c).data[b];
        expect((big - 1e6 * c) / c).toBeCloseTo(-1, 5);
        expect(small / ((near * near * n2) / (2 * c))).toBeCloseTo(1, 6);
      }
    }), { numRuns: 80, seed: 52 });
    expect(pseudoHuber(tensor(new Float64Array(6), [2, 3], 'float64'), 0.08).toArray()).toEqual([0, 0]);
  });

  it('gradchecks (float64): the boundary in x and F, the pseudo-Huber, the weighted objective in the prediction', () => {
    const rng = new Rng(53), sig = [0.3, 0.001, 7];
    const g1 = gradcheck((x, f) => applyBoundary(x, f, sig, 0.001), [rng.normal([3, 1, 4, 4], 0, 1, 'float64'), rng.normal([3, 1, 4, 4], 0, 1, 'float64')]);
    expect(g1.ok, g1.message).toBe(true);
    const g2 = gradcheck((d) => pseudoHuber(d, 0.06), [rng.normal([3, 2, 4], 0, 0.1, 'float64')]);
    expect(g2.ok, g2.message).toBe(true);
    const tgt = rng.normal([3, 1, 4, 4], 0, 1, 'float64'), w = Float64Array.from([2, 0, 0.5]);
    const g3 = gradcheck((p) => consistencyObjective(p, tgt, w, 0.08), [rng.normal([3, 1, 4, 4], 0, 1, 'float64')]);
    expect(g3.ok, g3.message).toBe(true);
    // the official form ‖d‖²/sg√(‖d‖² + c²) has twice our gradient
    const p = rng.normal([3, 1, 4, 4], 0, 1, 'float64');
    p.requiresGrad = true;
    backward(consistencyObjective(p, tgt, w, 0.08));
    const ours = Float64Array.from(p.grad!.data);
    const q = tensor(Array.from(p.data), p.shape, 'float64');
    q.requiresGrad = true;
    const sq = sum(pow(sub(q, tgt), 2), [1, 2, 3]);
    const den = noGrad(() => pow(add(sq, 0.08 * 0.08), 0.5));
    backward(mul(sum(mul(div(sq, den), tensor(Array.from(w), [3], 'float64'))), 1 / 3));
    expectClose('official = 2·ours', q.grad!.data, Array.from(ours, (g) => 2 * g), 1e-12, 1e-10);
  });

  it('ECT pairs: σ_min ≤ r ≤ t, x_t and x_r on one trajectory (one ε); the stage never decreases and r → t as it grows; w = 1/(t − r) or 0', () => {
    const s = section({ stage: 'consistency', ect_d: [20, 15] });
    fc.assert(fc.property(fc.array(fc.double({ min: -5, max: 4, noNaN: true }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 200 }), (ns, step) => {
      const { t, r, stage } = consistencyPairs(s, 200, step, ns);
      expect(stage).toBe(ectStage(step - 1, [20, 15], 1));
      expect(ectStage(step, [20, 15], 1)).toBeGreaterThanOrEqual(stage);
      t.forEach((tv, b) => {
        expect(r[b]).toBeGreaterThanOrEqual(EDM.sigmaMin);
        expect(r[b]).toBeLessThanOrEqual(tv);
        expect(tv).toBeGreaterThanOrEqual(EDM.sigmaMin);
      });
      const w = ectWeights(t, r);
      w.forEach((v, b) => expect(v).toBe(t[b] === r[b] ? 0 : 1 / (t[b] - r[b])));
    }), { numRuns: 100, seed: 54 });
    fc.assert(fc.property(fc.double({ min: 0.01, max: 80, noNaN: true }), (t) => {
      const p = { q: 2, k: 8, b: 1, sigmaMin: EDM.sigmaMin };
      for (let st = 1; st < 30; st++) expect(ectR(t, st + 1, p)).toBeGreaterThanOrEqual(ectR(t, st, p));
      expect(t - ectR(t, 40, p)).toBeLessThan(1e-9 * Math.max(1, t));
    }), { numRuns: 60, seed: 55 });
    const x = new Rng(56).normal([2, 1, 8, 8], 0, 0.5, 'float64'), eps = new Rng(57).normal([2, 1, 8, 8], 0, 1, 'float64');
    const { t, r } = consistencyPairs(s, 200, 50, [0.3, 1.2]);
    const xt = veNoise(x, eps, t), xr = veNoise(x, eps, r);
    for (let i = 0; i < 128; i++) {
      const b = i < 64 ? 0 : 1;
      expect((xt.data[i] - x.data[i]) / t[b]).toBeCloseTo((xr.data[i] - x.data[i]) / r[b], 9);
    }
  });

  it('the target gets no gradient: analytic = central differences with the target frozen, ≠ with it moving; stage 0 targets x', () => {
    const { s, m } = consistencyModel(2, { ect_d: [5, 5] });
    toFloat64(m);
    randomise(m, 3, 0.2);
    const rng = new Rng(58), x = rng.normal([3, 1, 8, 8], 0, 0.5, 'float64'), eps = rng.normal([3, 1, 8, 8], 0, 1, 'float64');
    const labels = Int32Array.from([0, 1, 2]), pairs = consistencyPairs(s, 100, 30, [0.5, -0.2, 1.0]);
    expect(pairs.stage).toBeGreaterThan(0);
    m.zeroGrad();
    const r0 = consistencyLoss(s, m, x, eps, pairs, labels);
    backward(r0.loss);
    const frozenTarget = r0.target;
    const frozen = () => noGrad(() => consistencyObjective(m.denoise(veNoise(x, eps, r0.t), r0.t, labels), frozenTarget, r0.weights, s.huber_c).item());
    const moving = () => noGrad(() => consistencyLoss(s, m, x, eps, pairs, labels).loss.item());
    const w = m.decoder.items[1].mlp.fc2.weight, h = 1e-6;
    let differs = 0;
    for (let j = 0; j < 6; j++) {
      const old = w.data[j];
      w.data[j] = old + h; const fp = frozen(), mp = moving();
      w.data[j] = old - h; const fm = frozen(), mm = moving();
      w.data[j] = old;
      expect(Math.abs((fp - fm) / (2 * h) - w.grad!.data[j])).toBeLessThan(1e-6 + 1e-5 * Math.abs(w.grad!.data[j]));
      if (Math.abs((mp - mm) / (2 * h) - w.grad!.data[j]) > 1e-5) differs++;
    }
    expect(differs).toBeGreaterThan(0);
    const { s: s0 } = consistencyModel(2, { ect_delta: 0 });
    const p0 = consistencyPairs(s0, 100, 1, [0.5, -0.2, 1.0]);
    expect(p0.stage).toBe(0);
    expect(consistencyLoss(s0, m, x, eps, p0, labels).target).toBe(x);
  });

  it('the sampler: one step is clamp(f(σ_max·shift·ε)); n steps are n evaluations at the first n of n + 1 Karras points, re-noised to √(σ_i² − σ_min²)', () => {
    const noise = new Rng(60).normal([2, 1, 4, 4], 0, 1, 'float64'), y = Int32Array.from([0, 1]);
    const grid = EDM, shift = 0.5;
    fc.assert(fc.property(fc.integer({ min: 1, max: 6 }), (steps) => {
      // Copies: the sampler returns each step's tensors to the pool when the step ends.
      const seen: number[] = [], inputs: { data: Float64Array }[] = [];
      const den = (x: Tensor, sig: Float64Array) => { seen.push(sig[0]); inputs.push({ data: Float64Array.from(x.data) }); return mul(x, 0.01); };
      const zs: { data: Float64Array }[] = [];
      const out = sampleConsistency(den, noise, y, { steps, shift, grid, renoise: (i) => { const z = new Rng(100 + i).normal([2, 1, 4, 4], 0, 1, 'float64'); zs.push({ data: Float64Array.from(z.data) }); return z; } });
      const sig = consistencySigmas(steps, shift, grid);
      expect(seen).toEqual(Array.from(sig));
      expect(sig[0]).toBe(80 * shift);
      if (steps > 1) expect(sig[steps - 1]).toBeGreaterThan(EDM.sigmaMin * shift);
      expectClose('first input', inputs[0].data, Array.from(noise.data, (e) => e * 40), 1e-12, 1e-12);
      for (let i = 1; i < steps; i++) {
        const prev = Array.from(inputs[i - 1].data, (v) => Math.min(1, Math.max(-1, v * 0.01)));
        const a = Math.sqrt(sig[i] ** 2 - (EDM.sigmaMin * shift) ** 2);
        expectClose(`input ${i}`, inputs[i].data, prev.map((v, k) => v + a * zs[i - 1].data[k]), 1e-12, 1e-12);
      }
      expect(out.data.every((v) => v >= -1 && v <= 1)).toBe(true);
    }), { numRuns: 12, seed: 61 });
    const { m } = consistencyModel(4);
    randomise(m, 5);
    const noise8 = new Rng(62).normal([2, 1, 8, 8]);
    const one = m.drawOwn(noise8, tensor([0, 1], [2]), { sampler: 'euler', steps: 1, cfg: 1, guidance_low: 0, guidance_high: 1 });
    const want = noGrad(() => m.denoise(mul(noise8, 40 * 8 / 32), new Float64Array(2).fill(40 * 8 / 32), Int32Array.from([0, 1])));
    expectClose('one step', one.data, Array.from(want.data, (v) => Math.min(1, Math.max(-1, v))), 1e-6, 1e-6);
    expect(m.drawOwn(noise8, tensor([0, 1], [2]), { sampler: 'euler', steps: 2, cfg: 1, guidance_low: 0, guidance_high: 1 }).shape).toEqual([2, 1, 8, 8]);
    expect(() => m.drawOwn(noise8, tensor([0, 1], [2]), { sampler: 'heun', steps: 2, cfg: 1, guidance_low: 0, guidance_high: 1 })).toThrow(/sample\.sampler must be euler/);
  });

  it("the spec's checks name the field: heun and cfg > 1 refused in stage 'consistency'", () => {
    const s = section({ stage: 'consistency' });
    const sp = (sample: Record<string, unknown>) => ({ name: 't', methods: ['epg'], model: { learn_sigma: false, depth: 2 }, train: { batch_size: 4, eval_every: 0 }, sample, epg: s }) as never;
    expect(() => epg.check!(s, sp({ sampler: 'heun' }))).toThrow(/sample\.sampler must be euler/);
    expect(() => epg.check!(s, sp({ sampler: 'euler', cfg: 2 }))).toThrow(/sample\.cfg must be ≤ 1/);
    expect(() => epg.check!(s, sp({ sampler: 'euler', cfg: 1 }))).not.toThrow();
  });
});

describe("stage 'diffusion' with prediction 'edm' (the official prediction_target 'edm')", () => {
  const build = (prediction: 'x0' | 'edm', seed: number) => {
    const sec = section({ stage: 'diffusion', prediction });
    return { s: sec, m: epg.backbone!.build(sec, { config: CONFIG, spec: { train: { steps: 100 } } } as never, seed) as EpgModel };
  };

  it("'edm' carries the boundary scalings, 'x0' (the default) none; both draw with the diffusion sampler", () => {
    expect(section({ stage: 'diffusion' }).prediction).toBe('x0');
    const x0 = build('x0', 1).m, edm = build('edm', 1).m;
    expect(x0.boundary).toBeNull();
    expect(edm.boundary).toEqual({ sigmaMin: EDM.sigmaMin * 8 / 64, sigmaData: 0.5 });
    expect([x0.sampler, edm.sampler, consistencyModel(1).m.sampler]).toEqual(['diffusion', 'diffusion', 'consistency']);
  });

  it('D = c_skip(σ)·x_σ + c_out(σ)·F(x_σ, σ) for any weights, σ and x; D(x, σ_min·shift) = x exactly', () => {
    const { m } = build('edm', 2);
    const sMin = m.boundary!.sigmaMin;
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.double({ min: 0.01, max: 40, noNaN: true }), fc.integer({ min: 0, max: 1e6 }), (B, sigma, seed) => {
      randomise(m, seed);
      const x = new Rng(seed + 1).normal([B, 1, 8, 8], 0, 2), y = Int32Array.from({ length: B }, (_, i) => i % 3);
      const sig = new Float64Array(B).fill(sigma);
      const d = noGrad(() => m.denoise(x, sig, y)), f = noGrad(() => m.forward(x, sig, y));
      const { cSkip, cOut } = cmScalings(sigma, sMin);
      expectClose(`D at σ ${sigma}`, d.data, Array.from(x.data, (v, i) => cSkip * v + cOut * f.data[i]), 1e-5, 1e-5);
      expect(Array.from(noGrad(() => m.denoise(x, new Float64Array(B).fill(sMin), y)).data)).toEqual(Array.from(x.data));
    }), { numRuns: 16, seed: 71 });
  });

  it("the loss reads D: a fresh model (output 0) scores the weighted ‖c_skip·x_σ − x‖², not ‖0 − x‖²; the one-step sample is clamp(c_skip(σ_0)·σ_0·ε)", () => {
    const { s, m } = build('edm', 3);
    const g = karrasSigmas(s.finetune_points, 1, EDM), rng = new Rng(4), x = rng.normal([2, 1, 8, 8]), eps = rng.normal([2, 1, 8, 8]);
    const { loss, sigmas, weights } = finetuneLoss(s, m, x, eps, [3, 900], Int32Array.from([1, 2]));
    let want = 0;
    for (let b = 0; b < 2; b++) {
      const { cSkip } = cmScalings(sigmas[b], m.boundary!.sigmaMin);
      for (let i = 0; i < 64; i++) { const xi = x.data[b * 64 + i], xs = xi + sigmas[b] * eps.data[b * 64 + i]; want += weights[b] * (cSkip * xs - xi) ** 2; }
    }
    expect(Math.abs(loss.item() - want / 128) / (want / 128)).toBeLessThan(1e-5);
    expect(weights[0]).toBe(1 / (g[3] - g[4]));
    const noise = new Rng(5).normal([2, 1, 8, 8]), s0 = 80 * 8 / 64, { cSkip } = cmScalings(s0, m.boundary!.sigmaMin);
    const one = m.drawOwn(noise, tensor([0, 1], [2]), { sampler: 'euler', steps: 1, cfg: 1, guidance_low: 0, guidance_high: 1 });
    expectClose('one step', one.data, Array.from(noise.data, (v) => Math.min(1, Math.max(-1, cSkip * s0 * v))), 1e-5, 1e-5); // float32 products
  });

  it("the spec's check: prediction 'edm' only in stage 'diffusion'", () => {
    const sp = (sec: EpgSection) => ({ name: 't', methods: ['epg'], model: { learn_sigma: false, depth: 2 }, train: { batch_size: 4, eval_every: 0 }, sample: { sampler: 'euler', cfg: 1 }, epg: sec }) as never;
    for (const stage of ['consistency', 'pretrain']) {
      const sec = section({ stage, prediction: 'edm' });
      expect(() => epg.check!(sec, sp(sec))).toThrow(/epg\.prediction 'edm' chooses stage 'diffusion''s output/);
    }
    const ok = section({ stage: 'diffusion', prediction: 'edm' });
    expect(() => epg.check!(ok, sp(ok))).not.toThrow();
  });
});

describe('the views’ photometric augmentation', () => {
  const img = (seed: number, B = 3) => new Rng(seed).uniform([B, 1, 8, 8], -1, 1);
  const P = (over: Partial<Photometric>): Photometric => ({ ...NO_PHOTOMETRIC, ...over });

  it('deterministic per seed; the range [−1, 1] is kept for any strengths; the defaults are off', () => {
    expect(photometricOf(section())).toEqual(NO_PHOTOMETRIC);
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 2, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 3, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(1 as const, 2 as const), (seed, br, co, bl, so, view) => {
      const x = img(seed), p = P({ brightness: br, contrast: co, jitterP: 0.8, blur: [0, bl], blurP: [1, 0.5], solarizeP: so });
      const a = augmentView(x, new Rng(seed + 1), 0.7, { p, view }), b = augmentView(x, new Rng(seed + 1), 0.7, { p, view });
      expect(Array.from(a.data)).toEqual(Array.from(b.data));
      for (const v of a.data) { expect(v).toBeGreaterThanOrEqual(-1 - 1e-6); expect(v).toBeLessThanOrEqual(1 + 1e-6); }
    }), { numRuns: 60, seed: 71 });
  });

  it('off (or never applied) gives today’s views bit for bit: the crop’s draws do not move', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), (seed) => {
      const x = img(seed), today = augmentView(x, new Rng(seed), 0.8);
      expect(Array.from(augmentView(x, new Rng(seed), 0.8, { p: NO_PHOTOMETRIC, view: 1 }).data)).toEqual(Array.from(today.data));
      const never = P({ brightness: 0.4, contrast: 0.4, jitterP: 0, blur: [0.1, 1], blurP: [0, 0] });
      expect(Array.from(augmentView(x, new Rng(seed), 0.8, { p: never, view: 1 }).data)).toEqual(Array.from(today.data));
    }), { numRuns: 20, seed: 72 });
  });

  it('brightness scales each image by one factor in [1 − s, 1 + s] (unclamped pixels); contrast keeps the image mean (unclamped)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0.05, max: 0.9, noNaN: true }), (seed, st) => {
      const x = new Rng(seed).uniform([2, 1, 8, 8], -0.9, -0.2); // u = (x + 1)/2 ∈ [0.05, 0.4]: no clamping
      const base = augmentView(x, new Rng(seed + 1), 1);
      const v = augmentView(x, new Rng(seed + 1), 1, { p: P({ brightness: st, jitterP: 1 }), view: 1 });
      for (let b = 0; b < 2; b++) {
        const ratios = Array.from({ length: 64 }, (_, i) => (v.data[b * 64 + i] + 1) / (base.data[b * 64 + i] + 1));
        for (const r of ratios) expect(r).toBeCloseTo(ratios[0], 4);
        expect(ratios[0]).toBeGreaterThanOrEqual(1 - st - 1e-5);
        expect(ratios[0]).toBeLessThanOrEqual(1 + st + 1e-5);
      }
      const xc = new Rng(seed).uniform([2, 1, 8, 8], -0.6, -0.2); // u ∈ [0.2, 0.4], c ∈ [0.5, 1.5]: no clamping
      const baseC = augmentView(xc, new Rng(seed + 1), 1);
      const c = augmentView(xc, new Rng(seed + 1), 1, { p: P({ contrast: Math.min(st, 0.5), jitterP: 1 }), view: 1 });
      expect(Array.from(c.data)).not.toEqual(Array.from(baseC.data));
      for (let b = 0; b < 2; b++) {
        const m = (t: Float32Array | Float64Array) => Array.from(t.slice(b * 64, (b + 1) * 64)).reduce((a, q) => a + q, 0) / 64;
        expect(m(c.data)).toBeCloseTo(m(baseC.data), 5);
      }
    }), { numRuns: 40, seed: 73 });
  });

  it('blur keeps a constant image and the image’s bounds; solarize acts on view 2 only (v ≥ 128/255 → 1 − v)', () => {
    const flat = new Rng(1).uniform([1, 1, 8, 8], 0.3, 0.3);
    const blurred = augmentView(flat, new Rng(2), 1, { p: P({ blur: [0.5, 2], blurP: [1, 1] }), view: 1 });
    for (const v of blurred.data) expect(v).toBeCloseTo(0.3, 6);
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), (seed) => {
      const x = img(seed, 2), base = augmentView(x, new Rng(seed), 1);
      const b = augmentView(x, new Rng(seed), 1, { p: P({ blur: [0.3, 1.5], blurP: [1, 1] }), view: 2 });
      for (let k = 0; k < 2; k++) {
        const part = (t: Float32Array | Float64Array) => Array.from(t.slice(k * 64, (k + 1) * 64));
        expect(Math.max(...part(b.data))).toBeLessThanOrEqual(Math.max(...part(base.data)) + 1e-6);
        expect(Math.min(...part(b.data))).toBeGreaterThanOrEqual(Math.min(...part(base.data)) - 1e-6);
      }
      const so = P({ solarizeP: 1 });
      expect(Array.from(augmentView(x, new Rng(seed), 1, { p: so, view: 1 }).data)).toEqual(Array.from(base.data));
      const s2 = augmentView(x, new Rng(seed), 1, { p: so, view: 2 });
      base.data.forEach((v, i) => { const u = (v + 1) / 2; expect(s2.data[i]).toBeCloseTo(u >= 128 / 255 ? 2 * (1 - u) - 1 : v, 6); });
    }), { numRuns: 20, seed: 74 });
  });

  it('stage 1 uses them (the contrastive term moves; the consistency term does not) and checks the blur range', () => {
    const rng = new Rng(3), x = rng.uniform([4, 1, 8, 8], -1, 1), eps = rng.normal([4, 1, 8, 8], 0, 1);
    const mk = () => { const m = new EpgPretrainModel(CONFIG, { projectorDim: 6, projectorOut: 5, refImages: 1, numClasses: 3 }, new Rng(1)).eval(); m.totalSteps = 10; return m; };
    const d = { step: 4, u: 0.2, seed: 7 };
    const a = pretrainTerms(section(), mk(), x, [0, 1, 2, 0], eps, d);
    const b = pretrainTerms(section({ view_brightness: 0.4, view_contrast: 0.4, view_blur: [0.1, 1] }), mk(), x, [0, 1, 2, 0], eps, d);
    expect(b.contrastive.item()).not.toBe(a.contrastive.item());
    expect(b.consistency.item()).toBe(a.consistency.item());
    const s = section({ view_blur: [2, 1] });
    expect(() => epg.check!(s, spec(s))).toThrow(/epg\.view_blur/);
  });
});

describe("stage 'consistency': the perceptual term", () => {
  it('the frozen stage-1 network of init: not a parameter, no gradient into it; InfoNCE of its projections at σ_min′; the model’s gradient = differences', () => {
    const pre = new EpgPretrainModel(CONFIG, { projectorDim: 6, projectorOut: 5, refImages: 1, numClasses: 3 }, new Rng(8));
    randomise(pre, 9, 0.2);
    const file = join(mkdtempSync(join(tmpdir(), 'epg-perceptual-')), 'stage1.safetensors');
    writeSafetensors(file, new Map(pre.online.namedParameters().map(([k, t]) => [`online.${k}`, t])), { format: 'diffactor-weights/1' });
    const s = section({ stage: 'consistency', init: file, perceptual_weight: 1 });
    const m = epg.backbone!.build(s, { config: CONFIG, spec: { train: { steps: 100 } } } as never, 3) as EpgModel;
    const net = m.perceptualNet!;
    expect(net).not.toBeNull();
    expect(m.namedParameters().some(([k]) => k.includes('projector'))).toBe(false);
    expect(Array.from(net.projector.namedParameters()[0][1].data)).toEqual(Array.from(pre.online.projector.namedParameters()[0][1].data));
    toFloat64(m); toFloat64(net); toFloat64(pre);
    randomise(m, 10, 0.2);
    const rng = new Rng(11), x = rng.normal([3, 1, 8, 8], 0, 0.5, 'float64'), eps = rng.normal([3, 1, 8, 8], 0, 1, 'float64');
    const labels = Int32Array.from([0, 1, 2]), pairs = consistencyPairs(s, 100, 30, [0.5, -0.2, 1.0]);
    const r = consistencyLoss(s, m, x, eps, pairs, labels);
    const sMin = new Float64Array(3).fill(EDM.sigmaMin * 8 / 64);
    const want = noGrad(() => infoNce(pre.forward(r.pred, sMin).p, pre.forward(x, sMin).p, s.temperature).item());
    expect(r.perceptual!.item()).toBeCloseTo(want, 10);
    m.zeroGrad();
    backward(r.perceptual!);
    for (const [k, t] of net.namedParameters()) expect(t.grad, `frozen ${k}`).toBeFalsy();
    const w = m.decoder.items[0].mlp.fc2.weight, h = 1e-6;
    const frozenK = noGrad(() => net.projector.forward(net.encoder.forward(x, sMin).e));
    const at = () => noGrad(() => infoNce(net.projector.forward(net.encoder.forward(m.denoise(veNoise(x, eps, r.t), r.t, labels), sMin).e), frozenK, s.temperature).item());
    let nonzero = 0;
    for (let j = 0; j < 5; j++) {
      const old = w.data[j];
      w.data[j] = old + h; const lp = at();
      w.data[j] = old - h; const lm = at();
      w.data[j] = old;
      expect(Math.abs((lp - lm) / (2 * h) - w.grad!.data[j])).toBeLessThan(1e-7 + 1e-5 * Math.abs(w.grad!.data[j]));
      if (Math.abs(w.grad!.data[j]) > 1e-9) nonzero++;
    }
    expect(nonzero).toBeGreaterThan(0);
    expect(perceptualTerm(s, m, r.pred, x).item()).toBeCloseTo(r.perceptual!.item(), 12);
    // stage 0 (the denoising warm-up) has no perceptual term, as the official step
    expect(consistencyLoss(s, m, x, eps, { ...pairs, stage: 0 }, labels).perceptual).toBeNull();
  });

  it('refused without stage consistency or init, naming the field; off by default', () => {
    expect(section({ stage: 'consistency' }).perceptual_weight).toBe(0);
    for (const over of [{ stage: 'consistency', perceptual_weight: 1 }, { stage: 'diffusion', perceptual_weight: 1, init: 'x.safetensors' }]) {
      const s = section(over);
      const sp = { name: 't', methods: ['epg'], model: { learn_sigma: false, depth: 2 }, train: { batch_size: 4, eval_every: 0 }, sample: { sampler: 'euler' }, epg: s } as never;
      expect(() => epg.check!(s, sp)).toThrow(/epg\.perceptual_weight/);
    }
  });
});
