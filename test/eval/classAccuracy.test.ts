// Class accuracy of conditional samples: closed forms (one-hot on the label → 1 and 1; uniform rows →
// confidence 1/K and the tie rule), agreement with gridAccuracy's separately written argmax on
// logits, and fast-check properties (bounds, row order, confidence ≥ accuracy / K), plus the errors.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { classAccuracy } from '../../src/eval/classAccuracy.ts';
import { softmaxRows } from '../../src/eval/inceptionScore.ts';
import { labelAgreement } from '../../src/eval/gridAccuracy.ts';

const rows = (r: number[][]) => ({ data: Float64Array.from(r.flat()), n: r.length, d: r[0].length });

/** N rows of K logits with their labels. */
const batch = fc.integer({ min: 2, max: 6 }).chain((K) => fc.integer({ min: 1, max: 30 }).chain((n) => fc.record({
  K: fc.constant(K),
  logits: fc.array(fc.array(fc.double({ min: -6, max: 6, noNaN: true }), { minLength: K, maxLength: K }), { minLength: n, maxLength: n }),
  labels: fc.array(fc.integer({ min: 0, max: K - 1 }), { minLength: n, maxLength: n }),
})));

describe('classAccuracy', () => {
  it('one-hot probabilities on the labels give accuracy 1 and confidence 1', () => {
    const labels = [0, 2, 1, 2];
    const r = classAccuracy(rows(labels.map((y) => [0, 1, 2].map((k) => (k === y ? 1 : 0)))), labels);
    expect(r).toEqual({ accuracy: 1, confidence: 1 });
  });

  it('uniform rows: confidence 1/K, and the tie goes to class 0 as numpy argmax does', () => {
    const labels = [0, 1, 2, 3, 0];
    const r = classAccuracy(rows(labels.map(() => [0.25, 0.25, 0.25, 0.25])), labels);
    expect(r.confidence).toBeCloseTo(0.25, 15);
    expect(r.accuracy).toBe(2 / 5);
  });

  it('a hand-worked case: 2 of 3 right, confidence (0.7 + 0.4 + 0.8) / 3', () => {
    const r = classAccuracy(rows([[0.7, 0.3], [0.6, 0.4], [0.2, 0.8]]), [0, 1, 1]);
    expect(r.accuracy).toBeCloseTo(2 / 3, 15);
    expect(r.confidence).toBeCloseTo((0.7 + 0.4 + 0.8) / 3, 15);
  });

  it('agrees with gridAccuracy\'s argmax on the logits (property)', () => {
    fc.assert(fc.property(batch, ({ K, logits, labels }) => {
      const p = softmaxRows({ data: Float64Array.from(logits.flat()), n: logits.length, d: K });
      const ours = classAccuracy(p, labels).accuracy;
      const theirs = labelAgreement(Float32Array.from(logits.flat()), labels, K).accuracy;
      // float32 logits can merge near-ties that float64 softmax keeps apart: compare only untied rows
      const tied = logits.some((r) => new Set(r.map((v) => Math.fround(v))).size < r.length || r.some((v, k) => r.some((w, j) => j !== k && Math.abs(v - w) < 1e-6)));
      if (!tied) expect(ours).toBeCloseTo(theirs, 12);
    }), { numRuns: 300 });
  });

  it('bounds, row-order invariance and confidence ≥ accuracy / K (property)', () => {
    fc.assert(fc.property(batch, fc.integer(), ({ K, logits, labels }, seed) => {
      const p = softmaxRows({ data: Float64Array.from(logits.flat()), n: logits.length, d: K });
      const r = classAccuracy(p, labels);
      expect(r.accuracy).toBeGreaterThanOrEqual(0);
      expect(r.accuracy).toBeLessThanOrEqual(1);
      expect(r.confidence).toBeGreaterThan(0);
      expect(r.confidence).toBeLessThanOrEqual(1 + 1e-12);
      // a right row's label has the largest of K probabilities summing to 1, so at least 1/K
      expect(r.confidence).toBeGreaterThanOrEqual(r.accuracy / K - 1e-12);
      const order = labels.map((_, i) => i).sort((a, b) => ((a * 7919 + seed) % 97) - ((b * 7919 + seed) % 97) || a - b);
      const q = { data: Float64Array.from(order.flatMap((i) => Array.from(p.data.subarray(i * K, (i + 1) * K)))), n: p.n, d: K };
      const s = classAccuracy(q, order.map((i) => labels[i]));
      expect(s.accuracy).toBeCloseTo(r.accuracy, 12);
      expect(s.confidence).toBeCloseTo(r.confidence, 12);
    }), { numRuns: 300 });
  });

  it('refuses a label outside the classes and a label count that does not match, naming them', () => {
    expect(() => classAccuracy(rows([[0.5, 0.5]]), [2])).toThrow(/label 2 of row 0 is not a class in \[0, 2\)/);
    expect(() => classAccuracy(rows([[0.5, 0.5]]), [0, 1])).toThrow(/2 labels for 1 rows/);
  });
});
