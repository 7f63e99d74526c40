// Property tests of REPA's alignment loss (REPA (github.com/sihyun-yu/REPA) "Invariants to property-test"), over
// values fast-check generates (not only Gaussian draws): L_proj lies in [−1, 1]; it only sees
// directions, so a positive per-token rescaling of either side leaves it unchanged and, as the
// consequence of that invariance, its gradient is orthogonal to each projected token; a negative
// rescaling flips each token's contribution; the alignment is index-wise (one permutation of the
// tokens applied to both sides changes nothing). The float64 reference and the token-count checks
// are in repa.test.ts; the actor-level routing of this loss is in test/protocols/invariants.test.ts.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backward } from '../../src/autograd/index.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { negCosineAlignment, repaProjLoss } from '../../src/methods/repa/loss.ts';

/** Tokens (B, T, D) as plain numbers; a token whose norm is below 1e-3 gets a 1 in its first slot, so every direction is defined. */
const tokens = fc.record({ B: fc.integer({ min: 1, max: 3 }), T: fc.integer({ min: 1, max: 6 }), D: fc.integer({ min: 1, max: 8 }) })
  .chain(({ B, T, D }) => fc.tuple(
    fc.constant([B, T, D] as const),
    fc.array(fc.double({ min: -100, max: 100, noNaN: true }), { minLength: 2 * B * T * D, maxLength: 2 * B * T * D }),
    fc.array(fc.double({ min: 1e-3, max: 1e3, noNaN: true }), { minLength: B * T, maxLength: B * T }),
  ))
  .map(([shape, v, scales]) => {
    const [B, T, D] = shape;
    const n = B * T * D;
    const fix = (a: number[]) => {
      for (let r = 0; r < B * T; r++) {
        let s = 0;
        for (let j = 0; j < D; j++) s += a[r * D + j] ** 2;
        if (Math.sqrt(s) < 1e-3) a[r * D] = 1;
      }
      return a;
    };
    return { shape: [B, T, D], pred: fix(v.slice(0, n)), target: fix(v.slice(n)), scales };
  });

const t3 = (v: ArrayLike<number>, shape: number[]): Tensor => tensor(Array.from(v), shape);
/** Token r of (rows, D) values multiplied by f(r). */
const perToken = (v: number[], D: number, f: (r: number) => number) => v.map((x, i) => x * f(Math.floor(i / D)));

/** cos of every token pair in float64. */
function cosines(a: number[], b: number[], D: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < a.length / D; r++) {
    let ab = 0, aa = 0, bb = 0;
    for (let j = 0; j < D; j++) { const u = a[r * D + j], v = b[r * D + j]; ab += u * v; aa += u * u; bb += v * v; }
    out.push(ab / (Math.sqrt(aa) * Math.sqrt(bb)));
  }
  return out;
}

const TOL = 2e-6; // float32 cosines of unit-scale values

describe('REPA L_proj properties (fast-check)', () => {
  it('lies in [−1, 1], for one encoder and for the mean over two', () => {
    fc.assert(fc.property(tokens, tokens, ({ shape, pred, target }, other) => {
      const l = negCosineAlignment(t3(pred, shape), t3(target, shape)).item();
      expect(l).toBeGreaterThanOrEqual(-1 - TOL);
      expect(l).toBeLessThanOrEqual(1 + TOL);
      const two = repaProjLoss([
        { pred: t3(pred, shape), target: t3(target, shape) },
        { pred: t3(other.pred, other.shape), target: t3(other.target, other.shape) },
      ]).item();
      expect(Math.abs(two)).toBeLessThanOrEqual(1 + TOL);
    }), { seed: 41, numRuns: 150 });
  });

  it('is invariant to a positive per-token rescaling of the projection or of the encoder feature', () => {
    fc.assert(fc.property(tokens, fc.boolean(), ({ shape, pred, target, scales }, scalePred) => {
      const D = shape[2];
      const base = negCosineAlignment(t3(pred, shape), t3(target, shape)).item();
      const p = scalePred ? perToken(pred, D, (r) => scales[r]) : pred;
      const q = scalePred ? target : perToken(target, D, (r) => scales[r]);
      expect(Math.abs(negCosineAlignment(t3(p, shape), t3(q, shape)).item() - base)).toBeLessThanOrEqual(TOL);
    }), { seed: 42, numRuns: 150 });
  });

  it('a negative rescaling flips the sign: per-token signs s give −mean(s·cos) (all negative: −L)', () => {
    fc.assert(fc.property(tokens, fc.array(fc.boolean(), { minLength: 18, maxLength: 18 }), ({ shape, pred, target, scales }, flips) => {
      const D = shape[2];
      const base = negCosineAlignment(t3(pred, shape), t3(target, shape)).item();
      const allNeg = negCosineAlignment(t3(perToken(pred, D, (r) => -scales[r]), shape), t3(target, shape)).item();
      expect(Math.abs(allNeg + base)).toBeLessThanOrEqual(TOL);
      // some tokens flipped: the loss is minus the mean of the signed float64 cosines
      const sign = (r: number) => (flips[r] ? -1 : 1);
      const got = negCosineAlignment(t3(pred, shape), t3(perToken(target, D, (r) => sign(r) * scales[r]), shape)).item();
      const cos = cosines(pred, target, D);
      const want = -cos.reduce((s, c, r) => s + sign(r) * c, 0) / cos.length;
      expect(Math.abs(got - want)).toBeLessThanOrEqual(TOL);
    }), { seed: 43, numRuns: 150 });
  });

  it('its gradient is orthogonal to each projected token (the infinitesimal form of scale invariance)', () => {
    fc.assert(fc.property(tokens, ({ shape, pred, target }) => {
      const D = shape[2];
      const p = t3(pred, shape).requireGrad();
      backward(negCosineAlignment(p, t3(target, shape)));
      const g = p.grad!.data;
      const rows = pred.length / D;
      for (let r = 0; r < rows; r++) {
        let dot = 0;
        for (let j = 0; j < D; j++) dot += pred[r * D + j] * g[r * D + j];
        // |∂L/∂p_r| ≤ 1/(rows·|p_r|), so ⟨p_r, ∂L/∂p_r⟩ is measured against 1/rows
        expect(Math.abs(dot)).toBeLessThanOrEqual(1e-5 / rows);
      }
    }), { seed: 44, numRuns: 100 });
  });

  it('is index-wise: one permutation of the tokens applied to both sides leaves it unchanged', () => {
    fc.assert(fc.property(tokens.chain((x) => fc.tuple(fc.constant(x), fc.shuffledSubarray(
      Array.from({ length: x.shape[0] * x.shape[1] }, (_, i) => i), { minLength: x.shape[0] * x.shape[1], maxLength: x.shape[0] * x.shape[1] }))),
    ([{ shape, pred, target }, perm]) => {
      const D = shape[2];
      const permute = (v: number[]) => perm.flatMap((r) => v.slice(r * D, (r + 1) * D));
      const base = negCosineAlignment(t3(pred, shape), t3(target, shape)).item();
      expect(Math.abs(negCosineAlignment(t3(permute(pred), shape), t3(permute(target), shape)).item() - base)).toBeLessThanOrEqual(TOL);
    }), { seed: 45, numRuns: 100 });
  });
});
