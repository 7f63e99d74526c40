import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cosine, linear, interpolate, velocityTarget, scoreFromVelocity, x0FromVelocity, epsFromVelocity, interpolantByName } from '../../src/diffusion/interpolant.ts';
import { gradcheck } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';

const both = [linear, cosine];
const time = fc.double({ min: 0.02, max: 0.98, noNaN: true });

describe('interpolant coefficients', () => {
  it('linear is α = 1 − t, σ = t; cosine is cos/sin(πt/2); endpoints data at 0, noise at 1', () => {
    for (const t of [0, 0.25, 0.5, 1]) {
      expect(linear.alpha(t)).toBe(1 - t);
      expect(linear.sigma(t)).toBe(t);
      expect(cosine.alpha(t)).toBeCloseTo(Math.cos((Math.PI * t) / 2), 15);
    }
    for (const p of both) {
      expect(p.alpha(0)).toBe(1);
      expect(p.sigma(0)).toBe(0);
      expect(p.alpha(1)).toBeCloseTo(0, 15);
      expect(p.sigma(1)).toBeCloseTo(1, 15);
    }
    expect(interpolantByName('cosine')).toBe(cosine);
    expect(() => interpolantByName('vp')).toThrow(/unknown interpolant/);
  });

  it('cosine keeps α² + σ² = 1', () => {
    fc.assert(fc.property(fc.double({ min: 0, max: 1, noNaN: true }), (t) => {
      expect(Math.abs(cosine.alpha(t) ** 2 + cosine.sigma(t) ** 2 - 1)).toBeLessThan(1e-15);
    }), { numRuns: 200, seed: 3 });
  });

  it('dα, dσ match central finite differences of α, σ', () => {
    const h = 1e-6;
    for (const p of both) {
      fc.assert(fc.property(time, (t) => {
        expect(Math.abs((p.alpha(t + h) - p.alpha(t - h)) / (2 * h) - p.dAlpha(t))).toBeLessThan(1e-8);
        expect(Math.abs((p.sigma(t + h) - p.sigma(t - h)) / (2 * h) - p.dSigma(t))).toBeLessThan(1e-8);
      }), { numRuns: 50, seed: 4 });
    }
  });

  it('timeOfRatio inverts σ/α', () => {
    for (const p of both) {
      fc.assert(fc.property(time, (t) => {
        expect(p.timeOfRatio(p.sigma(t) / p.alpha(t))).toBeCloseTo(t, 12);
      }), { numRuns: 50, seed: 5 });
    }
  });
});

describe('x_t, velocity target, score', () => {
  const batch = (seed: number) => {
    const rng = new Rng(seed);
    return { x: rng.normal([3, 2, 4], 0, 1, 'float64'), eps: rng.normal([3, 2, 4], 0, 1, 'float64'), t: Array.from(rng.uniformArray(3, 0.05, 0.95)) };
  };

  it('x_t = αx + σε per sample, and the linear target is ε − x', () => {
    const { x, eps, t } = batch(1);
    const xt = interpolate(linear, x, eps, t), v = velocityTarget(linear, x, eps, t);
    const refXt = x.toArray().map((xv, i) => (1 - t[Math.floor(i / 8)]) * xv + t[Math.floor(i / 8)] * eps.data[i]);
    expectClose('x_t', xt.data, refXt, 1e-15, 0);
    expectClose('ε − x', v.data, eps.toArray().map((e, i) => e - x.data[i]), 1e-15, 0);
  });

  it('the velocity target is d x_t / dt (finite differences), both paths', () => {
    const { x, eps, t } = batch(2);
    const h = 1e-6;
    for (const p of both) {
      const v = velocityTarget(p, x, eps, t);
      const up = interpolate(p, x, eps, t.map((s) => s + h)), dn = interpolate(p, x, eps, t.map((s) => s - h));
      const fd = up.toArray().map((u, i) => (u - dn.data[i]) / (2 * h));
      expectClose(`${p.name} dx_t/dt`, v.data, fd, 1e-8, 1e-7);
    }
  });

  it('score from the exact velocity is −ε/σ (REPA formula), and x̂, ε̂ recover x, ε', () => {
    for (const p of both) {
      const { x, eps, t } = batch(3);
      const xt = interpolate(p, x, eps, t), v = velocityTarget(p, x, eps, t);
      const s = scoreFromVelocity(p, v, xt, t);
      expectClose(`${p.name} score`, s.data, eps.toArray().map((e, i) => -e / p.sigma(t[Math.floor(i / 8)])), 1e-10, 1e-10);
      expectClose(`${p.name} x̂`, x0FromVelocity(p, v, xt, t).data, x.data, 1e-12, 1e-12);
      expectClose(`${p.name} ε̂`, epsFromVelocity(p, v, xt, t).data, eps.data, 1e-12, 1e-12);
    }
  });

  it('linear score is −((1−t)·v + x_t)/t for any v', () => {
    const { x: v, eps: xt, t } = batch(4);
    const s = scoreFromVelocity(linear, v, xt, t);
    const ref = v.toArray().map((vv, i) => { const tb = t[Math.floor(i / 8)]; return -((1 - tb) * vv + xt.data[i]) / tb; });
    expectClose('linear score', s.data, ref, 1e-12, 1e-12);
  });

  it('x_t and the target are differentiable in x and ε (gradcheck)', () => {
    const { x, eps, t } = batch(5);
    for (const p of both) {
      expect(gradcheck((a, b) => interpolate(p, a, b, t), [x, eps]).ok).toBe(true);
      expect(gradcheck((a, b) => velocityTarget(p, a, b, t), [x, eps]).ok).toBe(true);
      expect(gradcheck((a, b) => scoreFromVelocity(p, a, b, t), [x, eps]).ok).toBe(true);
    }
  });

  it('one number t serves the whole batch; a wrong count throws', () => {
    const { x, eps } = batch(6);
    expectClose('scalar t', interpolate(linear, x, eps, 0.3).data, interpolate(linear, x, eps, [0.3, 0.3, 0.3]).data, 0, 0);
    expect(() => interpolate(linear, x, eps, [0.1, 0.2])).toThrow(/2 times for a batch of 3/);
    expect(() => interpolate(linear, tensor([1], []), tensor([1], []), 0)).toThrow(/need a batch dim/);
  });
});
