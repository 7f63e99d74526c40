// EPG (src/methods/epg): methods-b §7's invariants as property tests and float64 gradchecks.
//   (a) σ′ < σ on one grid, one ε: the stage-1 pair lies on one VE trajectory (ve.property.test.ts
//       checks the trajectory identity; here the indices the step uses)
//   (b) the consistency target gets no gradient (analytic = central differences with the target
//       held fixed, ≠ with it moving); the EMA target holds buffers only, outside the optimiser, and
//       moves by target ← d·target + (1 − d)·θ once per step
//   (c) one grid index per batch (the draw is one number; every x_σ of the batch shares σ)
//   (f) InfoNCE of one sample is 0; the symmetric contrastive loss is invariant to swapping the views
// plus: InfoNCE, the encoder + projector and the stage-2 model (every parameter element) against
// central differences in float64; stage 2's snapped σ draw and weighted x0 loss; the sampler (one
// step = clamp(D(σ_0·ε)), an exact denoiser is reached, Heun's 2N − 1 calls, CFG only in (lo, hi]);
// the augmentation at crop 1 is the image or its mirror.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { add, backward, gradcheck, mul, noGrad, sub } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import type { Module } from '../../src/nn/module.ts';
import { parseSiTConfig, type SiTConfig } from '../../src/models/config.ts';
import { EDM, karrasSigmas } from '../../src/diffusion/ve.ts';
import { infoNce, symmetricInfoNce } from '../../src/methods/epg/loss.ts';
import { EpgModel, EpgPretrainModel } from '../../src/methods/epg/model.ts';
import { augmentView } from '../../src/methods/epg/augment.ts';
import { sampleEpg } from '../../src/methods/epg/sampler.ts';
import { EpgSection, epg, finetuneIndices, finetuneLoss, pretrainIndex, pretrainTerms } from '../../src/methods/epg/index.ts';
import { expectClose } from '../kernels/expectClose.ts';

const CONFIG: SiTConfig = parseSiTConfig({ family: 'SiT', inputSize: 8, inChannels: 1, patchSize: 4, hiddenSize: 8, depth: 2, numHeads: 2, mlpRatio: 2, numClasses: 3, classDropoutProb: 0.1, learnSigma: false, timeScale: 1 });
const section = (over: Record<string, unknown> = {}) => EpgSection.parse({ stage: 'pretrain', projector_dim: 6, projector_out: 5, curriculum: [2, 8], ...over });

/** Test only: every parameter and buffer as float64 storage (same values). */
function toFloat64(m: Module): void {
  for (const [, t] of m.stateDict()) {
    const w = t as unknown as { data: Float64Array; dtype: string };
    w.data = Float64Array.from(t.data);
    w.dtype = 'float64';
  }
}

/** Every parameter N(0, std) (the zero-initialised output and adaLN would hide their inputs' gradients). */
function randomise(m: Module, seed: number, std = 0.3): void {
  const rng = new Rng(seed);
  for (const [n, t] of m.namedParameters()) t.data.set(rng.child(n).normalArray(t.size, 0, std));
}

/**
 * Central differences of loss() against backward(loss()) in every parameter tensor, at up to
 * `per` elements of each spread over it (all of a small tensor); returns how many were checked.
 */
function checkEveryParameter(m: Module, loss: () => Tensor, tol = 1e-6, per = 5): number {
  m.zeroGrad();
  backward(loss());
  const at = (): number => noGrad(() => loss().item());
  const h = 1e-6;
  let n = 0;
  for (const [name, t] of m.namedParameters()) {
    const g = t.grad?.data;
    const stride = Math.max(1, Math.floor(t.size / per));
    for (let j = 0; j < t.size; j += stride) {
      const old = t.data[j];
      t.data[j] = old + h; const lp = at();
      t.data[j] = old - h; const lm = at();
      t.data[j] = old;
      const num = (lp - lm) / (2 * h), ana = g ? g[j] : 0;
      expect(Math.abs(num - ana), `${name}[${j}]: analytic ${ana} vs numeric ${num}`).toBeLessThan(tol + 1e-5 * Math.abs(num));
      n++;
    }
  }
  return n;
}

describe('InfoNCE', () => {
  it('gradcheck in q and k (float64)', () => {
    const rng = new Rng(1);
    const r = gradcheck((q, k) => infoNce(q, k, 0.1), [rng.normal([4, 3], 0, 1, 'float64'), rng.normal([4, 3], 0, 1, 'float64')]);
    expect(r.ok, r.message).toBe(true);
  });

  it('(f) one sample gives 0; the symmetric loss is invariant to swapping the views; it equals the written formula', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0.05, max: 2, noNaN: true }), (B, D, seed, tau) => {
      const rng = new Rng(seed), g = () => rng.normal([B, D], 0, 1, 'float64');
      const [p1, p2, t1, t2] = [g(), g(), g(), g()];
      expect(infoNce(p1, t1, tau).item()).toBeGreaterThanOrEqual(-1e-12);
      expect(symmetricInfoNce(p1, p2, t1, t2, tau).item()).toBeCloseTo(symmetricInfoNce(p2, p1, t2, t1, tau).item(), 12);
      // ℓ_i = logsumexp_j(q̂_i·k̂_j/τ) − q̂_i·k̂_i/τ, mean over i
      const unit = (t: Tensor, i: number) => { const r = Array.from(t.data.slice(i * D, (i + 1) * D)); const n = Math.hypot(...r); return r.map((v) => v / n); };
      let want = 0;
      for (let i = 0; i < B; i++) {
        const q = unit(p1, i), logits = Array.from({ length: B }, (_, j) => unit(t1, j).reduce((s, v, d) => s + v * q[d], 0) / tau);
        const m = Math.max(...logits);
        want += m + Math.log(logits.reduce((s, l) => s + Math.exp(l - m), 0)) - logits[i];
      }
      expect(infoNce(p1, t1, tau).item()).toBeCloseTo(want / B, 7);
    }), { numRuns: 60, seed: 11 });
    const one = new Rng(2).normal([1, 4], 0, 1, 'float64');
    expect(infoNce(one, new Rng(3).normal([1, 4], 0, 1, 'float64'), 0.1).item()).toBe(0);
  });
});

describe('EPG networks: every parameter against central differences (float64)', () => {
  const rng = new Rng(7);
  const x = rng.normal([3, 1, 8, 8], 0, 1, 'float64');

  it('stage 1: encoder + projector through the contrastive and consistency terms (their targets held fixed)', () => {
    const m = new EpgPretrainModel(CONFIG, { projectorDim: 6, projectorOut: 5, refImages: 1, numClasses: 3 }, new Rng(1));
    toFloat64(m);
    toFloat64((m as unknown as { targetNet: Module }).targetNet); // the net the target's buffers run in
    m.totalSteps = 10;
    const s = section(), eps = rng.normal([3, 1, 8, 8], 0, 1, 'float64');
    const d = { step: 4, u: 0.6, seed: 9 };
    m.eval(); // no target update or grid copy while differencing
    // the stop-gradient targets held fixed (the EMA target is buffers; the online target at σ′ frozen once)
    const r0 = pretrainTerms(s, m, x, [0, 1, 2], eps, d);
    const eNext = noGrad(() => m.online.encoder.forward(sub(x, mul(eps, -r0.sigmaNext)), new Float64Array(3).fill(r0.sigmaNext)).e);
    const checked = checkEveryParameter(m, () => {
      const r = pretrainTerms(s, m, x, [0, 1, 2], eps, d);
      const e = m.online.encoder.forward(sub(x, mul(eps, -r.sigma)), new Float64Array(3).fill(r.sigma)).e;
      return add(r.contrastive, infoNce(e, eNext, s.temperature));
    });
    expect(checked).toBeGreaterThanOrEqual(m.online.namedParameters().length);
  }, 120_000);

  it('stage 2: encoder + skips + adaLN decoder + output, x0 loss', () => {
    const m = new EpgModel(CONFIG, 2, new Rng(2));
    toFloat64(m);
    randomise(m, 3);
    const eps = rng.normal([3, 1, 8, 8], 0, 1, 'float64'), s = section({ stage: 'diffusion', finetune_points: 40 });
    const labels = Int32Array.from([0, 3, 2]); // 3 = the null class
    const checked = checkEveryParameter(m, () => finetuneLoss(s, m, x, eps, [5, 17, 30], labels).loss, 1e-5, 3);
    expect(checked).toBeGreaterThanOrEqual(m.namedParameters().length);
  }, 120_000);
});

describe('stage 1 step invariants', () => {
  const rng = new Rng(21);
  const x = rng.normal([4, 1, 8, 8], 0, 0.5), eps = rng.normal([4, 1, 8, 8], 0, 1);
  const x64 = rng.normal([4, 1, 8, 8], 0, 0.5, 'float64'), eps64 = rng.normal([4, 1, 8, 8], 0, 1, 'float64');

  it('(c) one grid index per batch: the draw is one u whatever the batch; (a) σ > σ′ ≥ σ_min, neighbours on the curriculum grid ×H/64', () => {
    const s = section();
    fc.assert(fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 1e6 }), (B, step, seed) => {
      const v = { step, x: tensor(new Float32Array(B * 64), [B, 1, 8, 8]) } as never;
      const d = epg.draw!(s, v, { epg: new Rng(seed) }, { encoderDim: null });
      expect(Object.keys(d).sort()).toEqual(['seed', 'step', 'u']);
      expect(typeof d.u).toBe('number');
      const K = 200, { points, index } = pretrainIndex(s, K, step, d.u);
      expect(index).toBeGreaterThanOrEqual(0);
      expect(index).toBeLessThanOrEqual(points - 2);
      const g = karrasSigmas(points, 8 / 64);
      expect(g[index]).toBeGreaterThan(g[index + 1]);
    }), { numRuns: 80, seed: 12 });
    const m = new EpgPretrainModel(CONFIG, { projectorDim: 6, projectorOut: 5, refImages: 1, numClasses: 3 }, new Rng(1)).eval();
    m.totalSteps = 10;
    const r = pretrainTerms(s, m, x, [0, 1, 2, 0], eps, { step: 5, u: 0.5, seed: 3 });
    const g = karrasSigmas(r.points, 8 / 64);
    expect(r.sigma).toBeGreaterThan(r.sigmaNext);
    expect(r.sigmaNext).toBeGreaterThanOrEqual(r.sigmaMin);
    expect(r.sigmaMin).toBeCloseTo(EDM.sigmaMin * 8 / 64, 15);
    expect(g.indexOf(r.sigma) + 1).toBe(g.indexOf(r.sigmaNext));
  });

  it('(b) the consistency target gets no gradient: analytic = differences with the target frozen, ≠ with it moving', () => {
    const s = section();
    const m = new EpgPretrainModel(CONFIG, { projectorDim: 6, projectorOut: 5, refImages: 1, numClasses: 3 }, new Rng(4)).eval();
    toFloat64(m);
    toFloat64((m as unknown as { targetNet: Module }).targetNet);
    m.totalSteps = 10;
    const d = { step: 6, u: 0.3, seed: 5 };
    m.zeroGrad();
    backward(pretrainTerms(s, m, x64, [0, 1, 2, 0], eps64, d).consistency);
    // the term as a function of θ with the target e(x + σ′ε) a constant vs recomputed
    const r0 = pretrainTerms(s, m, x64, [0, 1, 2, 0], eps64, d);
    const encOf = (sig: number) => m.online.encoder.forward(sub(x64, mul(eps64, -sig)), new Float64Array(4).fill(sig)).e;
    const frozenTarget = noGrad(() => encOf(r0.sigmaNext));
    const frozen = () => noGrad(() => infoNce(encOf(r0.sigma), frozenTarget, s.temperature).item());
    const moving = () => noGrad(() => pretrainTerms(s, m, x64, [0, 1, 2, 0], eps64, d).consistency.item());
    const w = m.online.encoder.blocks.items[1].mlp.fc2.weight, h = 1e-6;
    let differs = 0;
    for (let j = 0; j < 6; j++) {
      const old = w.data[j];
      w.data[j] = old + h; const fp = frozen(), mp = moving();
      w.data[j] = old - h; const fm = frozen(), mm = moving();
      w.data[j] = old;
      expect(Math.abs((fp - fm) / (2 * h) - w.grad!.data[j])).toBeLessThan(1e-7);
      if (Math.abs((mp - mm) / (2 * h) - w.grad!.data[j]) > 1e-6) differs++;
    }
    expect(differs).toBeGreaterThan(0);
  });

  it('(b) the EMA target is buffers only (no optimiser parameter), moves by d·target + (1 − d)·θ once per step, and starts at θ_0', () => {
    const m = new EpgPretrainModel(CONFIG, { projectorDim: 6, projectorOut: 5, refImages: 1, numClasses: 3 }, new Rng(5));
    expect(m.namedParameters().some(([n]) => n.startsWith('target'))).toBe(false);
    const shadow = () => new Map(m.target.namedBuffers());
    const params = new Map(m.online.namedParameters());
    for (const [n, t] of shadow()) expect(Array.from(t.data), n).toEqual(Array.from(params.get(n.replaceAll('_', '.').replace('encoder.', 'encoder.'))?.data ?? t.data));
    m.advanceTarget(1, 0.99); // θ_0 = target: no change
    const w = m.online.encoder.blocks.items[0].attn.qkv.weight;
    const before = Float64Array.from(m.target.namedBuffers().find(([n]) => n === 'encoder_blocks_0_attn_qkv_weight')![1].data);
    w.data.set(new Rng(6).normalArray(w.size));
    m.advanceTarget(2, 0.99);
    m.advanceTarget(2, 0.99); // the same step again: no second update
    const after = m.target.namedBuffers().find(([n]) => n === 'encoder_blocks_0_attn_qkv_weight')![1].data;
    expectClose('EMA', after, Array.from(before, (b, i) => Math.fround(0.99 * b + 0.01 * w.data[i])), 1e-6, 1e-6);
    expect(m.target_step.data[0]).toBe(2);
  });
});

describe('stage 2 draws and loss', () => {
  it('σ indices are the grid points nearest exp(P_mean + P_std·n), at most N − 2; the loss is mean_b w_b·mean(D − x)² with w = 1/(σ_i − σ_{i+1})', () => {
    const s = section({ stage: 'diffusion', finetune_points: 50 });
    const g = karrasSigmas(50);
    fc.assert(fc.property(fc.array(fc.double({ min: -4, max: 4, noNaN: true }), { minLength: 1, maxLength: 8 }), (ns) => {
      const idx = finetuneIndices(s, ns);
      idx.forEach((i, b) => {
        expect(i).toBeLessThanOrEqual(48);
        const target = Math.exp(-1.2 + 1.6 * ns[b]);
        for (let j = 0; j <= 48; j++) expect(Math.abs(g[i] - target)).toBeLessThanOrEqual(Math.abs(g[j] - target) + 1e-15);
      });
    }), { numRuns: 60, seed: 13 });
    const m = new EpgModel(CONFIG, 2, new Rng(8));
    randomise(m, 9, 0.1);
    const rng = new Rng(10), x = rng.normal([2, 1, 8, 8]), eps = rng.normal([2, 1, 8, 8]);
    const { loss, out, sigmas, weights } = finetuneLoss(s, m, x, eps, [3, 40], Int32Array.from([1, 2]));
    expect(Array.from(sigmas)).toEqual([g[3] * 8 / 64, g[40] * 8 / 64]);
    expect(Array.from(weights)).toEqual([1 / (g[3] - g[4]), 1 / (g[40] - g[41])]);
    let want = 0;
    for (let b = 0; b < 2; b++) for (let i = 0; i < 64; i++) want += weights[b] * (out.data[b * 64 + i] - x.data[b * 64 + i]) ** 2;
    expect(loss.item()).toBeCloseTo(want / 128, 2);
    expect(Math.abs(loss.item() - want / 128) / (want / 128)).toBeLessThan(1e-5);
  });

  it('a fresh stage-2 model predicts exactly 0 (zero output layer and adaLN)', () => {
    const m = new EpgModel(CONFIG, 2, new Rng(11));
    const out = m.forward(new Rng(1).normal([2, 1, 8, 8]), [0.5, 3], Int32Array.from([0, 1]));
    expect(out.data.every((v) => v === 0)).toBe(true);
  });
});

describe('EPG sampler', () => {
  const noise = new Rng(30).normal([3, 1, 4, 4], 0, 1, 'float64');
  const y = Int32Array.from([0, 1, 2]);
  const base = { heun: false, shift: 0.5, grid: EDM, cfg: 1, nullClass: 3, interval: [0.19, 1.61] as const };

  it('one step is clamp(D(σ_0·ε, σ_0)); an exact denoiser D = x* is reached at any step count; Heun calls 2N − 1 times', () => {
    const target = new Rng(31).uniform([3, 1, 4, 4], -0.9, 0.9, 'float64');
    let seen: number[] = [];
    const den = (x: Tensor, sig: Float64Array) => { seen.push(sig[0]); return mul(x, 1 / (1 + sig[0])); };
    const one = sampleEpg(den, noise, y, { ...base, steps: 1 });
    expect(seen).toEqual([80 * 0.5]);
    expectClose('one step', one.data, Array.from(noise.data, (e) => Math.min(1, Math.max(-1, (40 * e) / 41))), 1e-12, 1e-12);
    fc.assert(fc.property(fc.integer({ min: 1, max: 12 }), fc.boolean(), (steps, heun) => {
      let calls = 0;
      const out = sampleEpg(() => { calls++; return target; }, noise, y, { ...base, steps, heun });
      expectClose('x*', out.data, target.data, 1e-9, 1e-9);
      expect(calls).toBe(heun ? 2 * steps - 1 : steps);
    }), { numRuns: 30, seed: 14 });
    seen = [];
  });

  it('CFG doubles the batch only for σ in (lo, hi], with the null class in the second half', () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 20 }), (steps) => {
      const guided: number[] = [];
      sampleEpg((x, sig, l) => { if (x.shape[0] === 6) { guided.push(sig[0]); expect(Array.from(l.slice(3))).toEqual([3, 3, 3]); } return mul(x, 0); }, noise, y, { ...base, steps, cfg: 2 });
      const g = karrasSigmas(steps, 0.5);
      expect(guided).toEqual(Array.from(g).filter((s) => s > 0.19 && s <= 1.61));
    }), { numRuns: 20, seed: 15 });
  });
});

describe('augmentation', () => {
  it('at crop 1 each view is the image or its mirror; views are seeded', () => {
    const x = new Rng(40).normal([5, 2, 6, 6]);
    const v = augmentView(x, new Rng(1), 1);
    for (let b = 0; b < 5; b++) {
      const same = Array.from(v.data.slice(b * 72, (b + 1) * 72)), img = Array.from(x.data.slice(b * 72, (b + 1) * 72));
      const mirror = img.map((_, k) => { const c = Math.floor(k / 36), i = Math.floor((k % 36) / 6), j = k % 6; return img[c * 36 + i * 6 + (5 - j)]; });
      const d = (a: number[]) => Math.max(...a.map((val, k) => Math.abs(val - same[k])));
      expect(Math.min(d(img), d(mirror))).toBeLessThan(1e-5);
    }
    expect(Array.from(augmentView(x, new Rng(2), 0.7).data)).toEqual(Array.from(augmentView(x, new Rng(2), 0.7).data));
    expect(() => augmentView(x, new Rng(2), 0)).toThrow(/crop_min/);
  });
});
