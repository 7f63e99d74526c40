// DiGIT's token sampling (src/methods/digit/sampling.ts), fast-check properties: top-k keeps
// exactly min(k, K) candidates, the k largest; top-p keeps the smallest most-likely prefix whose
// mass reaches p; temperature 0 is the argmax; the kept distribution is proportional to
// softmax(logits / T) on the kept set; inverse-CDF draws never pick a filtered code and follow the
// probabilities; Φ matches known values.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkTokenSampling, drawFrom, filteredProbs, normalCdf } from '../../src/methods/digit/sampling.ts';

// distinct logits (ties handled separately): values on a 1/64 grid, shuffled
const logitsArb = fc.uniqueArray(fc.integer({ min: -256, max: 256 }), { minLength: 1, maxLength: 24 }).map((a) => a.map((v) => v / 64));
const sortedDesc = (l: number[]): number[] => l.map((_, i) => i).sort((a, b) => l[b] - l[a]);
const support = (p: ArrayLike<number>): number[] => Array.from(p).flatMap((v, i) => (v > 0 ? [i] : []));

describe('DiGIT token sampling: properties', () => {
  it('top-k keeps exactly min(k, K) candidates, the k largest logits', () => {
    fc.assert(fc.property(logitsArb, fc.integer({ min: 1, max: 30 }), fc.double({ min: 0.05, max: 5, noNaN: true }), (l, k, t) => {
      const p = filteredProbs(l, { temperature: t, topK: k, topP: 1 });
      const kept = support(p);
      expect(kept.length).toBe(Math.min(k, l.length));
      expect(kept.sort((a, b) => a - b)).toEqual(sortedDesc(l).slice(0, Math.min(k, l.length)).sort((a, b) => a - b));
      expect(Array.from(p).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 12);
    }));
  });

  it('top-k with ties still keeps exactly k (the lower ids win)', () => {
    expect(support(filteredProbs([1, 1, 1, 0], { temperature: 1, topK: 2, topP: 1 }))).toEqual([0, 1]);
  });

  it('top-p keeps the smallest most-likely prefix with mass ≥ p', () => {
    fc.assert(fc.property(logitsArb, fc.double({ min: 0.01, max: 1, noNaN: true }), fc.double({ min: 0.2, max: 3, noNaN: true }), (l, pp, t) => {
      const full = filteredProbs(l, { temperature: t, topK: null, topP: 1 });
      const p = filteredProbs(l, { temperature: t, topK: null, topP: pp });
      const ids = sortedDesc(l), kept = support(p);
      const n = kept.length;
      expect(kept.sort((a, b) => a - b)).toEqual(ids.slice(0, n).sort((a, b) => a - b)); // a prefix of the order
      const mass = (m: number): number => ids.slice(0, m).reduce((s, i) => s + full[i], 0);
      expect(mass(n)).toBeGreaterThanOrEqual(pp - 1e-9); // reaches p
      if (n > 1) expect(mass(n - 1)).toBeLessThan(pp); // one fewer does not (smallest)
      for (const i of kept) expect(p[i]).toBeCloseTo(full[i] / mass(n), 12); // renormalised
    }));
  });

  it('temperature 0 is the argmax; T > 0 gives softmax(logits / T) on every code', () => {
    fc.assert(fc.property(logitsArb, fc.integer({ min: 1, max: 30 }), fc.double({ min: 0.01, max: 1, noNaN: true }), (l, k, pp) => {
      const p = filteredProbs(l, { temperature: 0, topK: k, topP: pp });
      expect(support(p)).toEqual([sortedDesc(l)[0]]);
      expect(drawFrom(p, 0.999)).toBe(sortedDesc(l)[0]);
    }));
    fc.assert(fc.property(logitsArb, fc.double({ min: 0.1, max: 4, noNaN: true }), (l, t) => {
      const p = filteredProbs(l, { temperature: t, topK: null, topP: 1 });
      const z = l.reduce((s, v) => s + Math.exp(v / t), 0);
      l.forEach((v, i) => expect(p[i]).toBeCloseTo(Math.exp(v / t) / z, 12));
    }));
  });

  it('drawFrom: never a filtered code; the frequency of each code over a uniform grid of u is its probability', () => {
    fc.assert(fc.property(logitsArb, fc.integer({ min: 1, max: 5 }), (l, k) => {
      const p = filteredProbs(l, { temperature: 1, topK: k, topP: 1 });
      const n = 20_000, count = new Float64Array(l.length);
      for (let j = 0; j < n; j++) count[drawFrom(p, (j + 0.5) / n)]++;
      l.forEach((_, i) => { if (p[i] === 0) expect(count[i]).toBe(0); expect(Math.abs(count[i] / n - p[i])).toBeLessThanOrEqual(1 / n + 1e-12); });
    }), { numRuns: 30 });
  });

  it('Φ: known values, monotone, symmetric', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959963984540054)).toBeCloseTo(0.975, 6);
    expect(normalCdf(-1)).toBeCloseTo(0.15865525393145707, 6);
    fc.assert(fc.property(fc.double({ min: -8, max: 8, noNaN: true }), fc.double({ min: 1e-3, max: 1, noNaN: true }), (z, d) => {
      expect(normalCdf(z + d)).toBeGreaterThanOrEqual(normalCdf(z));
      expect(normalCdf(z) + normalCdf(-z)).toBeCloseTo(1, 7);
      expect(normalCdf(z)).toBeGreaterThanOrEqual(0);
      expect(normalCdf(z)).toBeLessThanOrEqual(1);
    }));
  });

  it('bad settings name the field', () => {
    expect(() => checkTokenSampling({ temperature: -1, topK: null, topP: 1 })).toThrow(/digit.temperature must be a finite number ≥ 0, got -1/);
    expect(() => checkTokenSampling({ temperature: 1, topK: 0, topP: 1 })).toThrow(/digit.top_k must be a positive integer or null, got 0/);
    expect(() => checkTokenSampling({ temperature: 1, topK: null, topP: 0 })).toThrow(/digit.top_p must be in \(0, 1\], got 0/);
  });
});
