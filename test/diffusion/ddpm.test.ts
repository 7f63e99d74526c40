// DDPM schedule, respacing, hybrid loss and single sampler steps against test/fixtures/ddpm.json
// (PyTorch float64, see make_ddpm_fixture.py), plus closed-form and gradcheck properties.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { DdpmSchedule, ddimTimesteps, spacedTimesteps } from '../../src/diffusion/ddpmSchedule.ts';
import { epsLoss, hybridLoss, qSample, vlbTerms } from '../../src/diffusion/ddpmLoss.ts';
import { ddimStep, ddpmStep } from '../../src/diffusion/ddpmSampler.ts';
import type { DdpmVariance } from '../../src/diffusion/ddpmPosterior.ts';
import { backward, gradcheck } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';

interface TJ { shape: number[]; values: number[] }
const fx = JSON.parse(readFileSync(new URL('../fixtures/ddpm.json', import.meta.url), 'utf8'));
const { rtol, atol } = fx.tolerance as { rtol: number; atol: number };
const T64 = (t: TJ) => tensor(t.values, t.shape, 'float64');
const base = DdpmSchedule.linear(1000);

describe('DDPM schedule (fixture: torch/numpy float64)', () => {
  it('linear β from 1e-4 to 0.02 and every derived table', () => {
    expect(fx.format).toBe('diffactor-ddpm-fixture');
    const idx: number[] = fx.schedule.indices;
    for (const name of ['betas', 'alphasCumprod', 'alphasCumprodPrev', 'posteriorVariance', 'posteriorLogVarianceClipped', 'posteriorMeanCoef1', 'posteriorMeanCoef2'] as const) {
      expectClose(name, idx.map((i) => base[name][i]), fx.schedule[name], atol, rtol);
    }
    expect(base.betas[0]).toBe(1e-4);
    expect(base.betas[999]).toBe(0.02);
  });

  it('space_timesteps(1000, "250"), "ddim50", and the 10-step respaced betas', () => {
    expect(spacedTimesteps(1000, 250)).toEqual(fx.spacing.spaced250);
    expect(ddimTimesteps(1000, 50)).toEqual(fx.spacing.ddim50);
    expect(spacedTimesteps(1000, 10)).toEqual(fx.spacing.spaced10);
    const s10 = base.respace(spacedTimesteps(1000, 10));
    expectClose('respaced betas', s10.betas, fx.spacing.spaced10Betas, atol, rtol);
    expect(Array.from(s10.timestepMap)).toEqual(fx.spacing.spaced10Map);
  });

  it('respacing keeps ᾱ at the kept steps, and respacing twice composes', () => {
    const keep = spacedTimesteps(1000, 50);
    const s = base.respace(keep);
    expectClose('ᾱ kept', s.alphasCumprod, keep.map((k) => base.alphasCumprod[k]), 1e-15, 1e-12);
    const sub = [0, 7, 20, 49];
    const twice = s.respace(sub), once = base.respace(sub.map((i) => keep[i]));
    expect(Array.from(twice.timestepMap)).toEqual(Array.from(once.timestepMap));
    expectClose('betas', twice.betas, once.betas, 1e-15, 1e-12);
  });

  it('rejects bad betas and impossible spacings', () => {
    expect(() => new DdpmSchedule([0.1, 0])).toThrow(/β\[1\]/);
    expect(() => spacedTimesteps(10, 11)).toThrow(/cannot take 11 of 10/);
    expect(() => ddimTimesteps(1000, 3000)).toThrow(/no integer stride/);
  });
});

describe('losses', () => {
  it('q_sample is √ᾱ x + √(1−ᾱ) ε per sample', () => {
    const rng = new Rng(1);
    const x = rng.normal([3, 4], 0, 1, 'float64'), eps = rng.normal([3, 4], 0, 1, 'float64');
    const t = [0, 500, 999];
    const got = qSample(base, x, eps, t);
    const ref = x.toArray().map((v, i) => { const k = t[Math.floor(i / 4)]; return Math.sqrt(base.alphasCumprod[k]) * v + Math.sqrt(1 - base.alphasCumprod[k]) * eps.data[i]; });
    expectClose('x_t', got.data, ref, 1e-15, 1e-14);
    expect(() => qSample(base, x, eps, [0, 1.5, 2])).toThrow(/not an integer/);
    expect(() => qSample(base, x, eps, [0, 1000, 2])).toThrow(/not an integer in \[0, 1000\)/);
  });

  it("hybrid loss (mse + vb, bits) and its gradient match torch's", () => {
    for (const c of fx.hybrid) {
      const out = T64(c.modelOut).requireGrad();
      const h = hybridLoss(base, out, T64(c.x0), T64(c.xt), T64(c.noise), c.t);
      expectClose(`mse t=${c.t}`, h.mse.data, c.mse, atol, rtol);
      expectClose(`vb t=${c.t}`, h.vb.data, c.vb, atol, rtol);
      expectClose(`loss t=${c.t}`, h.perSample.data, c.loss, atol, rtol);
      const w = tensor(c.cotangent, [c.cotangent.length], 'float64');
      backward([[h.perSample, w]]);
      expectClose(`d loss / d out t=${c.t}`, out.grad!.data, c.gradModelOut, atol, rtol);
    }
  });

  it('float32 inputs give the float64 loss to float32 precision', () => {
    const c = fx.hybrid[1];
    const f32 = (t: TJ) => tensor(t.values, t.shape, 'float32');
    const h = hybridLoss(base, f32(c.modelOut), f32(c.x0), f32(c.xt), f32(c.noise), c.t);
    expect(h.loss.dtype).toBe('float32');
    expectClose('float32 loss', h.perSample.data, c.loss, 1e-4, 1e-3);
  });

  it('the fixture exercises every VLB branch (t = 0 NLL with both open bins and the floor, t > 0 KL)', () => {
    const c = fx.hybrid[0];
    expect(c.t).toContain(0);
    const P = c.x0.values.length / c.t.length;
    for (const b of [0, 1]) {
      expect(c.t[b]).toBe(0);
      const x = c.x0.values.slice(b * P, (b + 1) * P);
      expect(x.some((v: number) => v === 1) && x.some((v: number) => v === -1)).toBe(true);
    }
    // the far-off mean of sample 1 (t = 0) floors the bin probability: those v-gradients are 0
    const grads = c.gradModelOut.slice(2 * P + P, 4 * P);
    expect(grads.some((g: number) => g === 0)).toBe(true);
  });

  it('the VLB gradient to v checks against finite differences; ε̂ gets no gradient from it', () => {
    const s = DdpmSchedule.linear(50);
    const rng = new Rng(2);
    const x0 = tensor(Array.from(rng.randintArray(0, 256, 24), (k) => k / 127.5 - 1), [4, 2, 3], 'float64');
    const eps = rng.normal([4, 2, 3], 0, 1, 'float64');
    const t = [0, 1, 25, 49];
    const xt = qSample(s, x0, eps, t);
    const epsPred = rng.normal([4, 2, 3], 0, 0.3, 'float64');
    const v = rng.uniform([4, 2, 3], -0.9, 0.9, 'float64');
    const r = gradcheck((vv) => vlbTerms(s, x0, xt, epsPred, vv, t), [v], { atol: 1e-6, rtol: 1e-5 });
    expect(r.ok, r.message).toBe(true);
    const e = epsPred.requireGrad();
    const vb = vlbTerms(s, x0, xt, e, v.requireGrad(), t);
    backward([[vb, tensor([1, 1, 1, 1], [4], 'float64')]]);
    expect(e.grad).toBeNull();
  });

  it('ε-loss is the mean-flat MSE against the noise', () => {
    const rng = new Rng(3);
    const p = rng.normal([2, 3], 0, 1, 'float64'), e = rng.normal([2, 3], 0, 1, 'float64');
    let s = 0;
    for (let i = 0; i < 6; i++) s += (p.data[i] - e.data[i]) ** 2;
    expect(epsLoss(p, e).loss.item()).toBeCloseTo(s / 6, 14);
  });

  it('hybridLoss rejects an output without the variance half', () => {
    const z = tensor(new Float64Array(12), [2, 2, 3], 'float64');
    expect(() => hybridLoss(base, z, z, z, z, [1, 2])).toThrow(/\(B, 2C, \.\.\.\)/);
  });
});

describe('single sampler steps (fixture: p_sample / ddim_sample with given noise)', () => {
  const s10 = base.respace(spacedTimesteps(1000, 10));
  it('DDPM ancestral step for learned, fixed-small and fixed-large variances, clipped or not', () => {
    for (const c of fx.steps) {
      const got = ddpmStep({
        schedule: s10, i: c.i, x: Float64Array.from(c.x), batch: c.shape[0], out: Float64Array.from(c.out),
        variance: c.variance as DdpmVariance, noise: Float64Array.from(c.noise), clipDenoised: c.clip,
      });
      expectClose(`ddpm i=${c.i} ${c.variance} clip=${c.clip}`, got, c.ddpm, atol, rtol);
    }
  });

  it('DDIM step for η ∈ {0, 0.5, 1}', () => {
    for (const c of fx.steps) {
      for (const eta of [0, 0.5, 1]) {
        const got = ddimStep({
          schedule: s10, i: c.i, x: Float64Array.from(c.x), batch: c.shape[0], out: Float64Array.from(c.out),
          variance: c.variance as DdpmVariance, noise: Float64Array.from(c.noise), clipDenoised: c.clip, eta,
        });
        expectClose(`ddim i=${c.i} η=${eta} ${c.variance} clip=${c.clip}`, got, c.ddim[eta === 0 ? '0.0' : eta === 1 ? '1.0' : '0.5'], atol, rtol);
      }
    }
  });

  it('a model output of the wrong size throws', () => {
    expect(() => ddpmStep({ schedule: s10, i: 3, x: new Float64Array(4), batch: 2, out: new Float64Array(4), variance: 'learned', noise: null }))
      .toThrow(/expected 8 \(learned variance\)/);
  });
});
