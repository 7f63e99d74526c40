// Losses: closed forms worked by hand, PyTorch's own values and gradients (test/fixtures/losses.json,
// made by make_losses_fixture.py), gradchecks over random shapes, and float32 against float64.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import {
  gradcheck, mseLoss, smoothL1Loss, cosineSimilarity, crossEntropy, gaussianKL, backward, Tape, withTape,
  type LossReduction,
} from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees } from './agreeF32.ts';

const reductions: LossReduction[] = ['mean', 'sum', 'none'];
const t64 = (v: number[], shape?: number[]): Tensor => tensor(v, shape, 'float64');

describe('closed forms', () => {
  it('crossEntropy with label smoothing equals the hand-worked value', () => {
    // logits (0, ln 2, ln 5): p = (1/8, 2/8, 5/8), -log p = (ln 8, ln 4, ln 1.6). Target 2, s = 0.2:
    // q = 0.8 onehot + 0.2/3, loss = 0.8 ln 1.6 + 0.2/3 (ln 8 + ln 4 + ln 1.6) = 0.638385538...
    const logits = t64([0, Math.log(2), Math.log(5)], [1, 3]);
    const hand = 0.8 * Math.log(1.6) + (0.2 / 3) * (Math.log(8) + Math.log(4) + Math.log(1.6));
    expect(hand).toBeCloseTo(0.638385538, 8);
    expect(crossEntropy(logits, [2], { labelSmoothing: 0.2 }).item()).toBeCloseTo(hand, 13);
    // without smoothing it is -log p_target; equal logits give ln C whatever the target
    expect(crossEntropy(logits, new Int32Array([0])).item()).toBeCloseTo(Math.log(8), 13);
    expect(crossEntropy(t64([3, 3, 3, 3], [1, 4]), t64([1]), { labelSmoothing: 0.7 }).item()).toBeCloseTo(Math.log(4), 13);
  });

  it('crossEntropy: ignored rows count for nothing; mean divides by the rows kept; bad targets throw', () => {
    const logits = t64([0, Math.log(3), 5, 1, 0, Math.log(3)], [3, 2]);
    // row 0: p = (1/4, 3/4), target 1 -> ln(4/3); row 2: p = (1/4, 3/4), target 0 -> ln 4
    const per = crossEntropy(logits, [1, -100, 0], { reduction: 'none' }).toArray();
    expectClose('ce none', per, [Math.log(4 / 3), 0, Math.log(4)], 1e-14, 1e-13);
    expect(crossEntropy(logits, [1, -100, 0]).item()).toBeCloseTo((Math.log(4 / 3) + Math.log(4)) / 2, 13);
    expect(crossEntropy(logits, [1, 7, 0], { ignoreIndex: 7, reduction: 'sum' }).item()).toBeCloseTo(Math.log(4 / 3) + Math.log(4), 13);
    expect(Number.isNaN(crossEntropy(logits, [-100, -100, -100]).item())).toBe(true);
    expect(() => crossEntropy(logits, [0, 2, 1])).toThrow(/class index/);
    expect(() => crossEntropy(logits, [0, 0.5, 1])).toThrow(/class index/);
    expect(() => crossEntropy(logits, [0, 1])).toThrow(/2 targets for 3 rows/);
  });

  it('cosineSimilarity: parallel 1, antiparallel -1, orthogonal 0, scale-free; a zero vector gives 0', () => {
    const a = t64([1, 2, 3, 1, 2, 3, 1, 0, 0, 0, 0, 0], [4, 3]);
    const b = t64([2, 4, 6, -0.5, -1, -1.5, 0, 5, 0, 1, 1, 1], [4, 3]);
    expectClose('cosine', cosineSimilarity(a, b).data, [1, -1, 0, 0], 1e-15, 1e-14);
    const x = new Rng(1).normal([5, 7], 0, 1, 'float64'), y = new Rng(2).normal([5, 7], 0, 1, 'float64');
    const scaled = t64(Array.from(x.data, (v) => 3.5 * v), [5, 7]);
    expectClose('scale-free', cosineSimilarity(scaled, y).data, cosineSimilarity(x, y).data, 1e-15, 1e-13);
    // along axis 0 equals along the last axis of the transpose (written out here)
    const xt = t64(Array.from({ length: 35 }, (_, i) => x.data[(i % 5) * 7 + Math.floor(i / 5)]), [7, 5]);
    const yt = t64(Array.from({ length: 35 }, (_, i) => y.data[(i % 5) * 7 + Math.floor(i / 5)]), [7, 5]);
    expectClose('axis 0', cosineSimilarity(x, y, 0).data, cosineSimilarity(xt, yt, -1).data, 1e-15, 1e-13);
    // the zero row: the clamped norm is eps, gradients stay finite
    const z = t64([0, 0, 0, 1, 2, 3], [2, 3]).requireGrad(), w = t64([1, 1, 1, 1, 1, 1], [2, 3]).requireGrad();
    const c = cosineSimilarity(z, w);
    expect(c.data[0]).toBe(0);
    backward([[c, t64([1, 1])]]);
    expect([...z.grad!.data, ...w.grad!.data].every(Number.isFinite)).toBe(true);
  });

  it('smoothL1Loss and mseLoss follow their piecewise / quadratic definitions', () => {
    const pred = t64([0.5, 2, -3, 0.25]), target = t64([0, 0, 0, 0]);
    // beta 1: 0.5 * 0.25, 2 - 0.5, 3 - 0.5, 0.5 * 0.0625
    expectClose('smoothL1 beta 1', smoothL1Loss(pred, target, 1, 'none').data, [0.125, 1.5, 2.5, 0.03125], 0, 1e-15);
    // beta 0.5: |d| >= beta except the last: 0.5 - 0.25, 1.75, 2.75, 0.5 * 0.0625 / 0.5
    expectClose('smoothL1 beta 0.5', smoothL1Loss(pred, target, 0.5, 'none').data, [0.25, 1.75, 2.75, 0.0625], 0, 1e-15);
    expectClose('smoothL1 beta 0 (L1)', smoothL1Loss(pred, target, 0, 'none').data, [0.5, 2, 3, 0.25], 0, 1e-15);
    expect(smoothL1Loss(pred, target).item()).toBeCloseTo((0.125 + 1.5 + 2.5 + 0.03125) / 4, 14);
    expect(mseLoss(pred, target).item()).toBeCloseTo((0.25 + 4 + 9 + 0.0625) / 4, 14);
    expect(mseLoss(pred, target, 'sum').item()).toBeCloseTo(0.25 + 4 + 9 + 0.0625, 14);
    expect(() => mseLoss(pred, t64([0, 0]))).toThrow(/differ/);
    expect(() => smoothL1Loss(pred, target, -1)).toThrow(/beta/);
  });

  it('gaussianKL: 0 at the prior; 0.5 (var + mu^2 - 1 - ln var) per element, summed per sample', () => {
    expect(gaussianKL(t64([0, 0, 0, 0], [2, 2]), t64([0, 0, 0, 0], [2, 2])).item()).toBe(0);
    // sample 0: mu = (1, 0), var = (2, 1); sample 1: mu = (0, -2), var = (0.5, 1)
    const kl = (mu: number, v: number) => 0.5 * (v + mu * mu - 1 - Math.log(v));
    const per = [kl(1, 2) + kl(0, 1), kl(0, 0.5) + kl(-2, 1)];
    const mean = t64([1, 0, 0, -2], [2, 2]), logvar = t64([Math.log(2), 0, Math.log(0.5), 0], [2, 2]);
    expectClose('kl none', gaussianKL(mean, logvar, 'none').data, per, 1e-15, 1e-14);
    expect(gaussianKL(mean, logvar).item()).toBeCloseTo((per[0] + per[1]) / 2, 14);
    expect(gaussianKL(mean, logvar, 'sum').item()).toBeCloseTo(per[0] + per[1], 14);
  });
});

interface FixtureCase {
  op: string;
  args: Record<string, number | string>;
  inputs: Record<string, { shape: number[]; values: number[] }>;
  output: { shape: number[]; values: number[] };
  cotangent: number[];
  grads: Record<string, number[]>;
}

describe('against PyTorch (test/fixtures/losses.json)', () => {
  const fixture = JSON.parse(readFileSync(new URL('../fixtures/losses.json', import.meta.url), 'utf8')) as {
    format: string; version: number; torch: string; tolerance: { atol: number; rtol: number }; cases: FixtureCase[];
  };
  const { atol, rtol } = fixture.tolerance;

  const run = (c: FixtureCase, x: Record<string, Tensor>): Tensor => {
    const a = c.args, red = a.reduction as LossReduction;
    switch (c.op) {
      case 'crossEntropy': return crossEntropy(x.logits, x.target, { labelSmoothing: a.labelSmoothing as number, reduction: red });
      case 'smoothL1Loss': return smoothL1Loss(x.pred, x.target, a.beta as number, red);
      case 'mseLoss': return mseLoss(x.pred, x.target, red);
      case 'cosineSimilarity': return cosineSimilarity(x.a, x.b, a.axis as number);
      case 'gaussianKL': return gaussianKL(x.mean, x.logvar, red);
      default: throw new Error(`unknown fixture op ${c.op}`);
    }
  };

  it('fixture header is the expected format', () => {
    expect(fixture.format).toBe('diffactor-losses-fixture');
    expect(fixture.version).toBe(1);
    expect(fixture.cases.length).toBeGreaterThan(30);
  });

  it('outputs and gradients match torch in float64 for every case', () => {
    for (const c of fixture.cases) {
      const what = `${c.op} ${JSON.stringify(c.args)} (torch ${fixture.torch})`;
      const x: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(c.inputs)) {
        x[k] = t64(v.values, v.shape);
        if (k in c.grads) x[k].requireGrad();
      }
      const tape = new Tape();
      const y = withTape(tape, () => run(c, x));
      expect(y.shape, what).toEqual(c.output.shape);
      expectClose(`${what} output`, y.data, c.output.values, atol, rtol);
      backward([[y, t64(c.cotangent, c.output.shape)]], { tape });
      for (const [k, g] of Object.entries(c.grads)) expectClose(`${what} grad ${k}`, x[k].grad!.data, g, atol, rtol);
    }
  });
});

describe('gradchecks over random shapes', () => {
  const shapeArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 });

  it('mseLoss and smoothL1Loss (differences kept away from the |d| = beta kink), all reductions', () => {
    fc.assert(
      fc.property(shapeArb, fc.constantFrom(...reductions), fc.constantFrom(0, 0.5, 1), fc.integer({ min: 0, max: 1000 }), (shape, red, beta, seed) => {
        const rng = new Rng(seed);
        const target = rng.normal(shape, 0, 1, 'float64');
        const d = rng.normal(shape, 0, 1, 'float64');
        const pred = t64(Array.from(d.data, (v, i) => {
          const a = Math.abs(v), s = v < 0 ? -1 : 1;
          return target.data[i] + s * (Math.abs(a - beta) < 0.05 || a < 0.05 ? a + 0.1 : a);
        }), shape);
        for (const [name, f] of [['mse', (p: Tensor, t: Tensor) => mseLoss(p, t, red)], ['smoothL1', (p: Tensor, t: Tensor) => smoothL1Loss(p, t, beta, red)]] as const) {
          const r = gradcheck(f, [pred, target]);
          expect(r.ok, `${name} ${JSON.stringify(shape)} ${red} beta ${beta}: ${r.message}`).toBe(true);
        }
      }),
      { numRuns: 25, seed: 41 },
    );
  });

  it('cosineSimilarity along any axis', () => {
    fc.assert(
      fc.property(shapeArb.chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: -s.length, max: s.length - 1 }))), fc.integer({ min: 0, max: 1000 }), ([shape, axis], seed) => {
        const rng = new Rng(seed);
        const r = gradcheck((a, b) => cosineSimilarity(a, b, axis), [rng.normal(shape, 0, 1, 'float64'), rng.normal(shape, 0, 1, 'float64')]);
        expect(r.ok, `${JSON.stringify(shape)} axis ${axis}: ${r.message}`).toBe(true);
      }),
      { numRuns: 30, seed: 42 },
    );
  });

  it('crossEntropy with label smoothing, ignored rows and every reduction', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.constantFrom(0, 0.1, 0.5), fc.constantFrom(...reductions), fc.integer({ min: 0, max: 1000 }), (n, c, s, red, seed) => {
        const rng = new Rng(seed);
        const target = t64(Array.from(rng.randintArray(0, c, n), (v, i) => (i === 1 ? -100 : v)));
        const r = gradcheck((l, t) => crossEntropy(l, t, { labelSmoothing: s, reduction: red }), [rng.normal([n, c], 0, 2, 'float64'), target], { skip: [1] });
        expect(r.ok, `(${n}, ${c}) s ${s} ${red}: ${r.message}`).toBe(true);
      }),
      { numRuns: 30, seed: 43 },
    );
  });

  it('gaussianKL, all reductions', () => {
    fc.assert(
      fc.property(shapeArb, fc.constantFrom(...reductions), fc.integer({ min: 0, max: 1000 }), (shape, red, seed) => {
        const rng = new Rng(seed);
        const r = gradcheck((m, lv) => gaussianKL(m, lv, red), [rng.normal(shape, 0, 1, 'float64'), rng.normal(shape, 0, 0.5, 'float64')]);
        expect(r.ok, `${JSON.stringify(shape)} ${red}: ${r.message}`).toBe(true);
      }),
      { numRuns: 20, seed: 44 },
    );
  });
});

describe('float32 path agrees with float64', () => {
  it('every loss on sizes off the SIMD widths', () => {
    const rng = new Rng(45);
    const p = rng.normal([9, 37], 0, 1, 'float64'), q = rng.normal([9, 37], 0, 1, 'float64');
    const tol = { atol: 1e-5, rtol: 1e-4 };
    expectF32Agrees('mseLoss', (a, b) => mseLoss(a, b), [p, q], tol);
    expectF32Agrees('smoothL1Loss', (a, b) => smoothL1Loss(a, b, 0.5, 'none'), [p, q], tol);
    expectF32Agrees('cosineSimilarity', (a, b) => cosineSimilarity(a, b), [p, q], tol);
    expectF32Agrees('crossEntropy', (l, t) => crossEntropy(l, t, { labelSmoothing: 0.1 }), [p, t64(Array.from(rng.randintArray(0, 37, 9)))], { ...tol, skip: [1] });
    expectF32Agrees('gaussianKL', (m, lv) => gaussianKL(m, lv), [p, q], tol);
  });
});
