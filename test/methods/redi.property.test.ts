// Property tests of ReDi's invariants (src/methods/redi; the method spec's list), over values
// fast-check generates:
// (a) PCA: components orthonormal; full-rank projection then back-projection gives f̃ back;
//     per-component variance non-increasing (and equal to the variance of the projections);
// (b) λ = 0 (a dropped batch): the loss has exactly zero gradient on output channels [C:];
// (c) L = image mean + λ·feature mean, not the all-channel mean: λ = 1, r = C gives 2 × all-channel MSE;
// (d) RG with w_r = 1 returns the plain prediction, bit for bit; otherwise v_u + w·(v_c − v_u);
// (e) RG's unconditional input equals the input on [:C] and is 0 on [C:];
// (f) with cfg_image_only (--cfg-vae) the feature channels are the conditional half's prediction,
//     bit for bit, and the image channels are CFG's; without it every channel is guided;
// (g) the drop decision is one draw per batch; its bounds (p = 0 never, p = 1 always, monotone in p);
// the time conversion (ReDi's t = 1 data ↔ diffactor's t = 0 data); the model as an image model
// (C-channel input = zero features); gradchecks of the new compositions; errors naming fields.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backward, gradcheck, slice } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { interpolate, linear, velocityLoss, velocityTarget } from '../../src/diffusion/index.ts';
import { evalModel } from '../../src/diffusion/guidance.ts';
import { hiddenAfterBlock } from '../../src/methods/partialForward.ts';
import { RediSiT, createRediSiT } from '../../src/methods/redi/model.ts';
import { backProject, fitFeaturePca, jacobiEigen, projectTokens } from '../../src/methods/redi/pca.ts';
import { featureDropped, featureWeight, rediLoss, representationGuidance } from '../../src/methods/redi/loss.ts';
import { fromRediTime, fromRediVelocity, toRediTime } from '../../src/methods/redi/time.ts';
import { RediSection, redi } from '../../src/methods/redi/index.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { perturb, tinySiTConfig } from './tiny.ts';

const f64 = (v: ArrayLike<number>, shape: number[]): Tensor => tensor(Array.from(v), shape, 'float64');

/** Token sets (rows × d) with a random mixing, so that channels are correlated and scaled differently. */
const tokenSet = fc.record({ rows: fc.integer({ min: 8, max: 40 }), d: fc.integer({ min: 1, max: 6 }), seed: fc.integer({ min: 0, max: 1e6 }) })
  .map(({ rows, d, seed }) => {
    const rng = new Rng(seed);
    const mix = rng.normalArray(d * d), z = rng.normalArray(rows * d), off = rng.normalArray(d, 0, 5);
    const out = new Float64Array(rows * d);
    for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) {
      let s = off[j];
      for (let k = 0; k < d; k++) s += z[r * d + k] * mix[k * d + j] * (1 + j);
      out[r * d + j] = s;
    }
    return { rows, d, tokens: out };
  });

function tinyRedi(seed: number, rank = 2, encDim = 5): RediSiT {
  const m = createRediSiT(tinySiTConfig(2), rank, encDim, seed);
  perturb(m, seed + 1000);
  return m.eval();
}

describe('ReDi invariants', () => {
  it('(a) PCA: orthonormal components, full-rank round trip, non-increasing variances', () => {
    fc.assert(fc.property(tokenSet, ({ rows, d, tokens }) => {
      const p = fitFeaturePca(tokens, rows, d);
      for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += p.components[a * d + j] * p.components[b * d + j];
        expect(Math.abs(s - (a === b ? 1 : 0))).toBeLessThan(1e-9);
      }
      for (let k = 1; k < d; k++) expect(p.variances[k]).toBeLessThanOrEqual(p.variances[k - 1] * (1 + 1e-12) + 1e-12);
      const z = projectTokens(p, tokens, rows, d);
      const back = backProject(p, z, rows, d);
      const std = Float64Array.from(tokens, (v, i) => (v - p.featMean[i % d]) / p.featStd[i % d]);
      expectClose('f̃ from its full-rank projection', back, std, 1e-8, 1e-8);
      for (let k = 0; k < d; k++) { // the variance along component k is that of the k-th projection
        let s = 0;
        for (let r = 0; r < rows; r++) s += z[r * d + k] ** 2;
        expect(Math.abs(s / rows - p.variances[k])).toBeLessThan(1e-8 * (1 + p.variances[0]));
      }
    }), { seed: 11, numRuns: 40 });
  });

  it('jacobiEigen diagonalises: A·v = λ·v for every pair, by decreasing λ', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 1e6 }), (n, seed) => {
      const g = new Rng(seed).normalArray(n * n);
      const a = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = g[i * n + j] + g[j * n + i];
      const { values, vectors } = jacobiEigen(a, n);
      for (let k = 0; k < n; k++) {
        if (k > 0) expect(values[k]).toBeLessThanOrEqual(values[k - 1]);
        for (let i = 0; i < n; i++) {
          let av = 0;
          for (let j = 0; j < n; j++) av += a[i * n + j] * vectors[k * n + j];
          expect(Math.abs(av - values[k] * vectors[k * n + i])).toBeLessThan(1e-9);
        }
      }
    }), { seed: 12, numRuns: 40 });
  });

  it('(b) λ = 0: exactly zero gradient on output channels [C:]; (c) L = image mean + λ·feature mean', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 3, noNaN: true }), (C, r, seed, lambda) => {
      const rng = new Rng(seed), B = 2, S = 3;
      const out = rng.normal([B, C + r, S, S], 0, 1, 'float64'), target = rng.normal([B, C + r, S, S], 0, 1, 'float64');
      out.requiresGrad = true;
      backward(rediLoss(out, target, C, 0));
      const per = S * S;
      for (let b = 0; b < B; b++) for (let c = C; c < C + r; c++) for (let i = 0; i < per; i++) expect(out.grad!.data[(b * (C + r) + c) * per + i]).toBe(0);
      const img = velocityLoss(slice(out, 1, 0, C), slice(target, 1, 0, C)).loss.item();
      const feat = velocityLoss(slice(out, 1, C), slice(target, 1, C)).loss.item();
      expect(Math.abs(rediLoss(out, target, C, lambda).item() - (img + lambda * feat))).toBeLessThan(1e-12);
      if (r === C) expect(Math.abs(rediLoss(out, target, C, 1).item() - 2 * velocityLoss(out, target).loss.item())).toBeLessThan(1e-12);
    }), { seed: 13, numRuns: 30 });
  });

  it('(d) RG with w_r = 1 is the plain prediction bit for bit; otherwise v_u + w·(v_c − v_u); (e) its unconditional input', () => {
    const m = tinyRedi(3);
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 4, noNaN: true }), (seed, w) => {
      const rng = new Rng(seed), B = 2;
      const x = rng.normal([B, 3, 8, 8]), t = tensor(rng.uniformArray(B), [B]), y = tensor([1, 10], [2]);
      m.rgScale = 1;
      expect(Array.from(m.samplingVelocity(x, t, y).data)).toEqual(Array.from(m.forward(x, t, y).out.data));
      const xu = m.featuresZeroed(x);
      expect(Array.from(slice(xu, 1, 0, 1).data)).toEqual(Array.from(slice(x, 1, 0, 1).data));
      expect(slice(xu, 1, 1).data.every((v) => v === 0)).toBe(true);
      m.rgScale = w;
      const vc = m.forward(x, t, y).out.data, vu = m.forward(xu, t, y).out.data;
      expectClose('RG', m.samplingVelocity(x, t, y).data, Float64Array.from(vc, (c, i) => vu[i] + w * (c - vu[i])), 1e-5, 1e-5);
    }), { seed: 14, numRuns: 8 });
  });

  it('(f) cfg_image_only: feature channels = the conditional half\'s prediction bit for bit, image channels guided', () => {
    const m = tinyRedi(7);
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 1.1, max: 4, noNaN: true }), fc.double({ min: 0.5, max: 2, noNaN: true }), (seed, w, rg) => {
      const rng = new Rng(seed), B = 2, C = 1, per = 8 * 8, ch = 3;
      const x = Float64Array.from(rng.normalArray(B * ch * per)), t = rng.uniformArray(1)[0];
      const y = tensor([1, 4], [B]);
      m.rgScale = rg;
      const fn = (xx: Tensor, tt: Tensor, yy: Tensor) => m.samplingVelocity(xx, tt, yy);
      const x2 = new Float64Array(2 * x.length); x2.set(x); x2.set(x, x.length);
      const both = fn(tensor(x2, [2 * B, ch, 8, 8]), tensor(new Array(2 * B).fill(t), [2 * B]), tensor([1, 4, 10, 10], [2 * B])).data; // [cond ; uncond]
      for (const imageOnly of [true, false]) {
        m.cfgImageOnly = imageOnly;
        const g = { scale: w, nullClass: 10, channels: m.guidedChannels };
        const { out } = evalModel(fn, x, [B, ch, 8, 8], t, y, 'float32', g, true);
        for (let b = 0; b < B; b++) for (let c = 0; c < ch; c++) for (let j = 0; j < per; j++) {
          const i = (b * ch + c) * per + j, cond = both[i], unc = both[B * ch * per + i];
          if (imageOnly && c >= C) expect(out[i]).toBe(cond);
          else expect(Math.abs(out[i] - (unc + w * (cond - unc)))).toBeLessThan(1e-9 * (1 + Math.abs(out[i])));
        }
      }
      m.cfgImageOnly = false;
    }), { seed: 17, numRuns: 6 });
  });

  it('(g) one drop decision per batch, its bounds; the feature weight is λ or 0', () => {
    fc.assert(fc.property(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (u, p, q) => {
      expect(featureDropped(u, 0)).toBe(false);
      expect(featureDropped(u, 1)).toBe(true);
      if (featureDropped(u, Math.min(p, q))) expect(featureDropped(u, Math.max(p, q))).toBe(true); // monotone in p
      expect(featureWeight(p * 3, true)).toBe(0);
      expect(featureWeight(p * 3, false)).toBe(p * 3);
    }), { seed: 15 });
    expect(() => featureDropped(0.5, 1.5)).toThrow(/redi.drop_prob must be in \[0, 1\], got 1.5/);
    // The method's draw: a single boolean for the batch and ε_z of (B, r, H, W); the rate follows p.
    const s = RediSection.parse({ rank: 2, drop_prob: 0.3 });
    const root = new Rng(4);
    const rngs = { 'redi-drop': root.child('d'), 'redi-feature-noise': root.child('n') };
    let dropped = 0;
    const N = 2000;
    for (let i = 0; i < N; i++) {
      const d = redi.draw!(s, { input: tensor(new Float32Array(3 * 1 * 4 * 4), [3, 1, 4, 4]) } as never, rngs, { encoderDim: 5 });
      expect(typeof d.dropped).toBe('boolean');
      expect(d.epsZ.shape).toEqual([3, 2, 4, 4]);
      if (d.dropped) dropped++;
    }
    expect(Math.abs(dropped / N - 0.3)).toBeLessThan(4 * Math.sqrt(0.3 * 0.7 / N)); // 4 binomial standard deviations
  });

  it('time conversion: ReDi\'s x_t = t·x + (1 − t)·ε and u = x − ε are diffactor\'s at 1 − t, velocity negated', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), (seed) => {
      const rng = new Rng(seed), B = 3;
      const x = rng.normal([B, 2, 2, 2], 0, 1, 'float64'), eps = rng.normal([B, 2, 2, 2], 0, 1, 'float64');
      const tr = rng.uniformArray(B);
      const td = Float64Array.from(tr, fromRediTime);
      for (let i = 0; i < B; i++) expect(toRediTime(td[i])).toBeCloseTo(tr[i], 15);
      const per = 8;
      const xtRedi = Float64Array.from(x.data, (v, i) => tr[Math.floor(i / per)] * v + (1 - tr[Math.floor(i / per)]) * eps.data[i]);
      const uRedi = Float64Array.from(x.data, (v, i) => v - eps.data[i]);
      expectClose('x_t', interpolate(linear, x, eps, td).data, xtRedi, 1e-12, 1e-12);
      expectClose('target', velocityTarget(linear, x, eps, td).data, fromRediVelocity(uRedi), 1e-6, 1e-6);
    }), { seed: 16, numRuns: 30 });
  });

  it('a C-channel input is the joint input with zero features, image channels out; the partial forward agrees', () => {
    const m = tinyRedi(5);
    const rng = new Rng(9), B = 2;
    const x = rng.normal([B, 1, 8, 8]), t = rng.uniformArray(B), y = [2, 4];
    const joint = m.forward(m.withZeroFeatures(x), t, y, { taps: [1, 2] });
    const img = m.forward(x, t, y);
    expect(img.out.shape).toEqual([B, 1, 8, 8]);
    expect(Array.from(img.out.data)).toEqual(Array.from(slice(joint.out, 1, 0, 1).data));
    expect(Array.from(hiddenAfterBlock(m, x, t, y, 1).data)).toEqual(Array.from(joint.hidden.get(1)!.data));
  });

  it('gradchecks: zero-feature padding, RG unconditional input, split loss, RG combination (float64)', () => {
    const m = tinyRedi(6);
    const rng = new Rng(10);
    const xi = rng.normal([2, 1, 2, 2], 0, 1, 'float64'), xj = rng.normal([2, 3, 2, 2], 0, 1, 'float64');
    const tg = rng.normal([2, 3, 2, 2], 0, 1, 'float64');
    for (const [name, r] of [
      ['withZeroFeatures', gradcheck((x) => m.withZeroFeatures(x), [xi])],
      ['featuresZeroed', gradcheck((x) => m.featuresZeroed(x), [xj])],
      ['rediLoss', gradcheck((o, t) => rediLoss(o, t, 1, 0.7), [xj, tg])],
      ['representationGuidance', gradcheck((a, b) => representationGuidance(a, b, 1.8), [xj, tg])],
    ] as const) expect(r.ok, `${name}: ${r.message}`).toBe(true);
  });

  it('refuses bad spec input, naming the field', () => {
    expect(() => redi.check!(RediSection.parse({ rg_scale: 1.5 }), { model: {} } as never)).toThrow(/redi.rg_scale 1.5 needs .* redi.drop_prob > 0/);
    expect(() => redi.check!(RediSection.parse({ drop_prob: 0.2 }), { model: { learn_sigma: true } } as never)).toThrow(/model.learn_sigma must be false/);
    expect(RediSection.safeParse({ drop_prob: 1.5 }).error?.issues[0].path).toEqual(['drop_prob']);
    expect(RediSection.safeParse({ rank: 0 }).error?.issues[0].path).toEqual(['rank']);
    expect(() => createRediSiT(tinySiTConfig(2), 9, 5, 0)).toThrow(/redi.rank must be in 1..5/);
    expect(() => redi.backbone!.fromWeights(RediSection.parse({ rank: 3 }), { spec: {} as never, config: tinySiTConfig(2) }, new Map([['pca.components', tensor(new Float32Array(10), [2, 5])]]))).toThrow(/2 PCA components but redi.rank is 3/);
  });
});
