// DDT (src/methods/ddt) property tests (fast-check) of the invariants the method spec lists
// (/work/shared/methods/methods-a.md §6): the DP schedule (|R| = K, strictly increasing, R[0] = 0,
// all < N; cost ≤ the uniform schedule's at the same K; agreement with brute force on small N;
// K = N ⇒ every step, cost 0); sharing with period 1 = no sharing, exactly, and = an Euler loop in
// diffactor time on forward(); the grid's time shift (monotone, fixes 0 and 1, s = 1 identity,
// the P2 identity with diffactor's shift); the open guidance interval and the CFG batch doubled
// at every step; a reused state carries its own (stale) t; the alignment gradient from an encoder
// tap reaches only the encoder side; the time convention at the boundary; errors naming fields.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backward, sum } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { noGrad } from '../../src/autograd/tape.ts';
import { parseSiTConfig } from '../../src/models/config.ts';
import { shiftTime } from '../../src/diffusion/timeSampling.ts';
import { DDT, toDdtTime } from '../../src/methods/ddt/model.ts';
import { DDTSection, ddt } from '../../src/methods/ddt/index.ts';
import { DDT_SAMPLING_DEFAULTS, ddtGrid, sampleDdt, solveDpSchedule } from '../../src/methods/ddt/sampler.ts';
import { checkSchedule, cumulativeErrors, dpBudget, dpSchedule, reuseErrors, scheduleCost, uniformSchedule } from '../../src/methods/ddt/sharing.ts';
import type { Linear } from '../../src/nn/linear.ts';
import { newCounters, withMeta } from '../../src/kernels/meta.ts';
import { expectClose } from '../kernels/expectClose.ts';

const CFG = parseSiTConfig({ family: 'SiT', inputSize: 8, inChannels: 2, patchSize: 2, hiddenSize: 16, depth: 3, numHeads: 2, mlpRatio: 2, numClasses: 4, classDropoutProb: 0.1, learnSigma: false, timeScale: 1 });

/** A tiny DDT with every weight perturbed (the zero-initialised final layer too) so outputs move. */
function tinyDDT(seed: number, encoderBlocks = 2): DDT {
  const m = new DDT(CFG, encoderBlocks, new Rng(seed)).eval();
  const r = new Rng(seed + 1);
  for (const [, p] of m.namedParameters()) { const n = r.normalArray(p.size, 0, 0.1); for (let i = 0; i < p.size; i++) p.data[i] += n[i]; }
  return m;
}

/** Random error matrix e (N × N): symmetric, zero diagonal, entries in [0, 1). */
const errorMatrix = (n: number, seed: number): Float64Array[] => {
  const u = new Rng(seed).uniformArray(n * n);
  const e = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) e[i][j] = e[j][i] = u[i * n + j];
  return e;
};

/** Every K-subset of 0..N−1 containing 0, ascending. */
function* schedules(n: number, k: number, start = 1, acc: number[] = [0]): Generator<number[]> {
  if (acc.length === k) { yield acc; return; }
  for (let j = start; j < n; j++) yield* schedules(n, k, j + 1, [...acc, j]);
}

describe('DP schedule (sharing.ts)', () => {
  it('|R| = K, strictly increasing from 0, all < N; optimal (= brute force); ≤ uniform at the same K', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.nat(1e5), (n, r0, seed) => {
      const r = Math.min(r0, n);
      const E = cumulativeErrors(errorMatrix(n, seed));
      const K = dpBudget(n, r);
      const { schedule, cost } = dpSchedule(E, K);
      expect(schedule.length).toBe(K);
      expect(() => checkSchedule(schedule, n)).not.toThrow();
      expect(scheduleCost(E, schedule)).toBeCloseTo(cost, 12);
      let best = Infinity;
      for (const s of schedules(n, K)) best = Math.min(best, scheduleCost(E, s));
      expect(cost).toBeCloseTo(best, 12);
      if (n % r === 0) expect(cost).toBeLessThanOrEqual(scheduleCost(E, uniformSchedule(n, r)) + 1e-12);
    }), { numRuns: 150, seed: 21 });
  });

  it('K = N recomputes every step at cost 0; K = 1 is step 0 only, its cost E(N−1, 0)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 12 }), fc.nat(1e5), (n, seed) => {
      const E = cumulativeErrors(errorMatrix(n, seed));
      const all = dpSchedule(E, n);
      expect(all.schedule).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(all.cost).toBe(0);
      const one = dpSchedule(E, 1);
      expect(one.schedule).toEqual([0]);
      expect(one.cost).toBe(E[n - 1][0]);
    }), { numRuns: 40, seed: 22 });
  });

  it('reuse errors: 1 − mean token cosine, symmetric, 0 on the diagonal, invariant to scaling a state', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 }), fc.nat(1e5), (n, tokens, seed) => {
      const rng = new Rng(seed), dim = 3;
      const states = Array.from({ length: n }, () => rng.normalArray(tokens * dim));
      const e = reuseErrors(states, tokens, dim);
      for (let i = 0; i < n; i++) {
        expect(Math.abs(e[i][i])).toBeLessThan(1e-12);
        for (let j = 0; j < n; j++) { expect(e[i][j]).toBe(e[j][i]); expect(e[i][j]).toBeGreaterThanOrEqual(-1e-12); expect(e[i][j]).toBeLessThanOrEqual(2 + 1e-12); }
      }
      const scaled = states.map((s, i) => (i === 0 ? s.map((v) => 2.5 * v) : s));
      const e2 = reuseErrors(scaled, tokens, dim);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(e2[i][j]).toBeCloseTo(e[i][j], 12);
      // E(i, j) = Σ_{k=j..i} e(k, j)
      const E = cumulativeErrors(e);
      for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) { let c = 0; for (let k = j; k <= i; k++) c += e[k][j]; expect(E[i][j]).toBeCloseTo(c, 12); }
    }), { numRuns: 30, seed: 23 });
  });

  it('the uniform schedule recomputes ⌈N/r⌉ steps, every r-th; periods outside 1..N are refused', () => {
    expect(uniformSchedule(7, 3)).toEqual([0, 3, 6]);
    expect(uniformSchedule(5, 1)).toEqual([0, 1, 2, 3, 4]);
    expect(() => uniformSchedule(4, 5)).toThrow(/ddt\.share_period must be an integer in 1\.\.sample\.steps \(4\), got 5/);
    expect(() => checkSchedule([1, 2], 4)).toThrow(/must start at step 0/);
  });
});

describe('the DDT sampler', () => {
  const S = { steps: 5, cfg: 2.5, guidance_low: 0, guidance_high: 1 };
  const setup = (seed: number) => {
    const m = tinyDDT(seed);
    const rng = new Rng(seed + 7);
    const noise = rng.normal([3, CFG.inChannels, CFG.inputSize, CFG.inputSize]);
    const y = tensor([0, 3, 1], [3]);
    return { m, noise, y };
  };

  it('period 1 (uniform or dp) equals no sharing exactly, and an Euler loop on forward() in diffactor time', () => {
    fc.assert(fc.property(fc.nat(1e4), fc.double({ min: 0.5, max: 3, noNaN: true }), (seed, shift) => {
      const { m, noise, y } = setup(seed);
      m.sampling = { ...DDT_SAMPLING_DEFAULTS, period: 1, shift };
      const a = m.drawOwn(noise, y, { sampler: 'euler', ...S });
      m.sampling = { ...DDT_SAMPLING_DEFAULTS, period: 1, shift, schedule: 'dp' };
      const b = m.drawOwn(noise, y, { sampler: 'euler', ...S });
      expect(m.lastEncoderCalls).toBe(S.steps);
      // No sharing, by hand: forwardDDT without a state at every step.
      const g = ddtGrid(S.steps, DDT_SAMPLING_DEFAULTS.lastStep, shift);
      const x = Float64Array.from(noise.data), B = 3, half = x.length;
      const xs = Float64Array.from(noise.data), t = toDdtTime(g); // diffactor times 1 = t_0 > … > t_N = 0
      noGrad(() => {
        for (let i = 0; i < S.steps; i++) {
          const x2 = tensor([...x, ...x], [2 * B, ...noise.shape.slice(1)]);
          const o = m.forwardDDT(x2, new Array(2 * B).fill(g[i]), [4, 4, 4, 0, 3, 1]).out.data;
          const w = g[i] > 0 && g[i] < 1 ? S.cfg : 1;
          for (let j = 0; j < half; j++) x[j] += (g[i + 1] - g[i]) * (o[j] + w * (o[half + j] - o[j]));
          const x2s = tensor([...xs, ...xs], [2 * B, ...noise.shape.slice(1)]);
          const v = m.forward(x2s, new Array(2 * B).fill(t[i]), [4, 4, 4, 0, 3, 1]).out.data; // ε − x, diffactor's velocity
          for (let j = 0; j < half; j++) xs[j] += (t[i + 1] - t[i]) * (v[j] + w * (v[half + j] - v[j]));
        }
      });
      expect(Array.from(a.data)).toEqual(Array.from(Float32Array.from(x))); // the state is float64, returned in the noise's float32
      expect(Array.from(b.data)).toEqual(Array.from(a.data));
      expectClose('diffactor-time loop (to float32 rounding)', a.data, xs, 1e-6, 1e-6);
    }), { numRuns: 4, seed: 31 });
  });

  it('period r recomputes ⌈N/r⌉ times and reused steps read the stale state; results differ from no sharing', () => {
    const { m, noise, y } = setup(3);
    const calls: { state: boolean; tau: number }[] = [];
    const orig = m.forwardDDT.bind(m);
    m.forwardDDT = (x: Tensor, tau: Tensor | ArrayLike<number>, yy: Tensor | ArrayLike<number>, o = {}) => {
      const t = tau as ArrayLike<number>;
      calls.push({ state: !!(o as { state?: unknown }).state, tau: t[0] });
      expect(x.shape[0]).toBe(6); // always the doubled batch
      return orig(x, tau, yy, o);
    };
    m.sampling = { ...DDT_SAMPLING_DEFAULTS, period: 2 };
    const shared = m.drawOwn(noise, y, { sampler: 'euler', ...S });
    expect(m.lastEncoderCalls).toBe(3);
    expect(calls.map((c) => c.state)).toEqual([false, true, false, true, false]);
    m.sampling = { ...DDT_SAMPLING_DEFAULTS, period: 1 };
    const full = m.drawOwn(noise, y, { sampler: 'euler', ...S });
    expect(Array.from(shared.data)).not.toEqual(Array.from(full.data));
  });

  it('a reused state carries its own t: with a state, the τ passed does not matter (the decoder reads t only through z)', () => {
    fc.assert(fc.property(fc.nat(1e4), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (seed, ta, tb) => {
      const m = tinyDDT(seed);
      const x = new Rng(seed).normal([2, CFG.inChannels, CFG.inputSize, CFG.inputSize]);
      noGrad(() => {
        const state = m.forwardDDT(x, [0.3, 0.7], [1, 2]).state;
        expect(Array.from(m.forwardDDT(x, [ta, ta], [1, 2], { state }).out.data)).toEqual(Array.from(m.forwardDDT(x, [tb, tb], [0, 4], { state }).out.data));
      });
    }), { numRuns: 5, seed: 32 });
  });

  it('guidance only strictly inside the interval; the CFG batch is doubled at every step even outside', () => {
    const { m, noise, y } = setup(5);
    // A grid 0, 0.25, 0.5, 0.75, 1 (last_step 0.25, 4 steps): τ = 0.5 sits ON the bound τ_hi = 1 − 0.5.
    m.sampling = { ...DDT_SAMPLING_DEFAULTS, lastStep: 0.25 };
    const s = { steps: 4, guidance_low: 0.5, guidance_high: 1 };
    let batches = 0;
    const orig = m.forwardDDT.bind(m);
    m.forwardDDT = (x, tau, yy, o = {}) => { batches += x.shape[0]; return orig(x, tau, yy, o); };
    const guided = m.drawOwn(noise, y, { sampler: 'euler', cfg: 3, ...s });
    expect(batches).toBe(4 * 6);
    // The interval (τ_lo, τ_hi) = (0, 0.5) holds only τ = 0.25: guiding with w at 0.5 (on the bound) changes nothing.
    const plain = m.drawOwn(noise, y, { sampler: 'euler', cfg: 1, ...s });
    expect(Array.from(guided.data)).not.toEqual(Array.from(plain.data));
    const onlyBounds = m.drawOwn(noise, y, { sampler: 'euler', cfg: 3, steps: 4, guidance_low: 0.5, guidance_high: 0.5 });
    expect(Array.from(onlyBounds.data)).toEqual(Array.from(plain.data));
    expect(ddtGrid(4, 0.25, 1)).toEqual(Float64Array.from([0, 0.25, 0.5, 0.75, 1]));
  });

  it('grid: from 0 to 1, last step as set, the shift monotone, fixing 0 and 1, s = 1 the identity, = diffactor\'s τ_s in t = 1 − τ', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 30 }), fc.double({ min: 0.1, max: 10, noNaN: true }), fc.double({ min: 0.01, max: 0.5, noNaN: true }), (n, s, last) => {
      const plain = ddtGrid(n, last, 1), g = ddtGrid(n, last, s);
      expect(plain[0]).toBe(0);
      expect(g[0]).toBe(0);
      expect(g[n]).toBe(1);
      if (n > 1) expect(plain[n - 1]).toBeCloseTo(1 - last, 12);
      for (let i = 0; i < n; i++) expect(g[i + 1]).toBeGreaterThan(g[i]);
      for (let i = 0; i <= n; i++) expect(1 - g[i]).toBeCloseTo(shiftTime(1 - plain[i], s), 12);
    }), { numRuns: 60, seed: 33 });
  });

  it('the DP schedule of a model: K steps from 0, deterministic (fixed template), cost ≤ uniform\'s', () => {
    const m = tinyDDT(9);
    const sampling = { ...DDT_SAMPLING_DEFAULTS, period: 2, schedule: 'dp' as const, templateImages: 2 };
    const s = { steps: 6, cfg: 2, guidance_low: 0, guidance_high: 1 };
    const a = solveDpSchedule(m, s, sampling), b = solveDpSchedule(m, s, sampling);
    expect(a).toEqual(b);
    expect(a.schedule.length).toBe(3);
    expect(a.schedule[0]).toBe(0);
    m.sampling = sampling;
    expect(m.recomputeSchedule({ sampler: 'euler', ...s })).toEqual(a.schedule);
    const noise = new Rng(1).normal([2, CFG.inChannels, CFG.inputSize, CFG.inputSize]);
    m.drawOwn(noise, tensor([1, 2], [2]), { sampler: 'euler', ...s });
    expect(m.lastEncoderCalls).toBe(3);
  });
});

describe('the model and the method', () => {
  it('forward(x, t) = −forwardDDT(x, 1 − t) exactly (the boundary), and 1 − t is its own inverse', () => {
    fc.assert(fc.property(fc.nat(1e4), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 2 }), (seed, t) => {
      const m = tinyDDT(seed);
      const x = new Rng(seed).normal([2, CFG.inChannels, CFG.inputSize, CFG.inputSize]);
      noGrad(() => {
        const a = m.forward(x, t, [1, 4]).out.data, b = m.forwardDDT(x, toDdtTime(t), [1, 4]).out.data;
        for (let i = 0; i < a.length; i++) expect(a[i]).toBe(-b[i]);
      });
      expect(Array.from(toDdtTime(toDdtTime(t)))).toEqual(t.map((v) => 1 - (1 - v)));
    }), { numRuns: 5, seed: 41 });
  });

  it('hiddenAfter (probe, teacher query) = the forward\'s tap with labels as given, for encoder and decoder blocks, in train mode too', () => {
    const m = tinyDDT(12);
    const x = new Rng(3).normal([2, CFG.inChannels, CFG.inputSize, CFG.inputSize]);
    noGrad(() => {
      const taps = m.forward(x, [0.25, 0.8], [4, 2], { taps: [1, 2, 3] }).hidden;
      m.train();
      for (const k of [1, 2, 3]) expect(Array.from(m.hiddenAfter(x, [0.25, 0.8], [4, 2], k).data), `block ${k}`).toEqual(Array.from(taps.get(k)!.data));
    });
  });

  it('at init the output is exactly 0 (final layer zero), block adaLN is not zero (the official init)', () => {
    const m = new DDT(CFG, 2, new Rng(3)).eval();
    const x = new Rng(4).normal([2, CFG.inChannels, CFG.inputSize, CFG.inputSize]);
    expect(Array.from(m.forward(x, [0.2, 0.9], [0, 1]).out.data).every((v) => v === 0)).toBe(true);
    expect(Array.from(m.blocks.items[0].adaLN_modulation.at<Linear>(0).weight.data).some((v) => v !== 0)).toBe(true);
  });

  it('a loss on an encoder tap (REPA at encoder block k) reaches only s_embedder, t/y embedders and blocks 1..k', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 }), fc.nat(1e4), (k, seed) => {
      const m = tinyDDT(seed);
      m.zeroGrad();
      const x = new Rng(seed).normal([2, CFG.inChannels, CFG.inputSize, CFG.inputSize]);
      const o = m.forward(x, [0.3, 0.6], [1, 2], { taps: [k] });
      backward(sum(o.hidden.get(k)!));
      for (const [n, p] of m.namedParameters()) {
        const b = /^blocks\.(\d+)\./.exec(n);
        const reached = /^(s_embedder|t_embedder|y_embedder)\./.test(n) || (b !== null && Number(b[1]) < k);
        const nonzero = p.grad !== null && Array.from(p.grad.data).some((v) => v !== 0);
        if (!reached) expect(nonzero, n).toBe(false);
        else if (!/^t_embedder\.mlp\.0\.bias$/.test(n)) expect(nonzero, n).toBe(true);
      }
    }), { numRuns: 4, seed: 42 });
  });

  it('meta execution (shape-only tensors): a DDT builds with the real parameter shapes and its forward and backward count work', () => {
    const real = new DDT(CFG, 2, new Rng(0));
    const c = newCounters();
    const m = withMeta(c, () => {
      const mm = new DDT(CFG, 2, new Rng(0));
      const x = new Rng(1).normal([2, CFG.inChannels, CFG.inputSize, CFG.inputSize]);
      backward(sum(mm.forward(x, [0.2, 0.7], [1, 2], { rng: new Rng(2) }).out));
      return mm;
    });
    const shapes = (x: DDT) => x.namedParameters().map(([n, t]) => `${n}:${t.shape.join('x')}`);
    expect(shapes(m)).toEqual(shapes(real));
    const elementwise = [...c.by].filter(([k]) => k.endsWith('|elementwise')).reduce((a, [, v]) => a + v.flops, 0);
    expect(elementwise).toBeGreaterThan(0);
  });

  it('errors name the field and what was expected', () => {
    const spec = (depth: number, sampler = 'euler', steps = 10) => ({ model: { depth }, methods: ['ddt'], diffusion: { path: 'linear' }, sample: { sampler, steps } }) as never;
    expect(() => ddt.check!(DDTSection.parse({ encoder_blocks: 6 }), spec(6))).toThrow(/ddt\.encoder_blocks is 6: expected an integer in 1\.\.5/);
    expect(() => ddt.check!(DDTSection.parse({ share_period: 2 }), spec(6, 'heun'))).toThrow(/ddt\.share_period 2 .* sample\.sampler must be euler, got heun/);
    expect(() => ddt.check!(DDTSection.parse({ share_period: 20 }), spec(6))).toThrow(/ddt\.share_period 20 exceeds sample\.steps 10/);
    expect(() => ddt.check!(DDTSection.parse({}), { ...(spec(6) as object), diffusion: { path: 'cosine' } } as never)).toThrow(/diffusion\.path must be linear/);
    expect(() => DDTSection.parse({ share_schedule: 'fast' })).toThrow();
    expect(() => new DDT({ ...CFG, numHeads: 8 }, 2, new Rng(0))).toThrow(/head dim .* divisible by 4/);
    expect(() => ddtGrid(3, 0, 1)).toThrow(/ddt\.last_step must be in \(0, 1\]/);
    expect(DDTSection.parse({})).toEqual({ encoder_blocks: null, share_schedule: 'uniform', share_period: 1, last_step: 0.04, time_shift: 1, dp_template_images: 8, dp_seed: 0 });
  });
});
