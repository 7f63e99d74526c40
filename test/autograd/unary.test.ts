// Elementwise unary ops and activations: forwards against closed forms written here, gradchecks on
// random shapes (inputs kept inside each op's domain and away from kinks), torch's edge rules,
// and the float32 path against float64.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  gradcheck, exp, log, sqrt, rsqrt, pow, abs, clamp, sigmoid, tanh, relu, silu, gelu, backward,
} from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees } from './agreeF32.ts';

const shapeArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 3 });

// Standard normal values pushed at least 0.1 away from 0 (the kink of abs and relu) and from ±1
// (the clamp bounds used below), so finite differences never straddle a kink.
function awayFromKinks(shape: number[], seed: number): Tensor {
  const x = new Rng(seed).normal(shape, 0, 1.5, 'float64');
  for (let i = 0; i < x.size; i++) {
    for (const k of [0, -1, 1]) if (Math.abs(x.data[i] - k) < 0.1) x.data[i] = k + (x.data[i] >= k ? 0.1 : -0.1);
  }
  return x;
}
const positive = (shape: number[], seed: number): Tensor => new Rng(seed).uniform(shape, 0.2, 3, 'float64');

// The normal CDF for the exact GELU x * Phi(x), with erf by Simpson's rule on exp(-t^2): a
// computation independent of the kernels' series / continued-fraction erf.
function phi(x: number): number {
  const z = Math.abs(x) / Math.SQRT2, n = 2000, h = z / n;
  let s = 1 + Math.exp(-z * z);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
  const erf = ((s * h) / 3) * (2 / Math.sqrt(Math.PI));
  return 0.5 * (1 + Math.sign(x) * erf);
}

const cases: { name: string; op: (x: Tensor) => Tensor; ref: (v: number) => number; input: (s: number[], seed: number) => Tensor }[] = [
  { name: 'exp', op: exp, ref: Math.exp, input: awayFromKinks },
  { name: 'log', op: log, ref: Math.log, input: positive },
  { name: 'sqrt', op: sqrt, ref: Math.sqrt, input: positive },
  { name: 'rsqrt', op: rsqrt, ref: (v) => 1 / Math.sqrt(v), input: positive },
  { name: 'pow 3', op: (x) => pow(x, 3), ref: (v) => v * v * v, input: awayFromKinks },
  { name: 'pow -1.5', op: (x) => pow(x, -1.5), ref: (v) => 1 / (v * Math.sqrt(v)), input: positive },
  { name: 'pow 0', op: (x) => pow(x, 0), ref: () => 1, input: awayFromKinks },
  { name: 'abs', op: abs, ref: Math.abs, input: awayFromKinks },
  { name: 'clamp', op: (x) => clamp(x, -1, 1), ref: (v) => (v < -1 ? -1 : v > 1 ? 1 : v), input: awayFromKinks },
  { name: 'clamp min only', op: (x) => clamp(x, -1), ref: (v) => (v < -1 ? -1 : v), input: awayFromKinks },
  { name: 'clamp max only', op: (x) => clamp(x, null, 1), ref: (v) => (v > 1 ? 1 : v), input: awayFromKinks },
  { name: 'sigmoid', op: sigmoid, ref: (v) => 1 / (1 + Math.exp(-v)), input: awayFromKinks },
  { name: 'tanh', op: tanh, ref: (v) => (Math.exp(2 * v) - 1) / (Math.exp(2 * v) + 1), input: awayFromKinks },
  { name: 'relu', op: relu, ref: (v) => (v > 0 ? v : 0), input: awayFromKinks },
  { name: 'silu', op: silu, ref: (v) => v / (1 + Math.exp(-v)), input: awayFromKinks },
  { name: 'gelu', op: (x) => gelu(x), ref: (v) => v * phi(v), input: awayFromKinks },
  {
    name: 'gelu tanh', op: (x) => gelu(x, 'tanh'),
    ref: (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))), input: awayFromKinks,
  },
];

describe('unary ops', () => {
  for (const c of cases) {
    it(`${c.name}: forward matches the closed form, gradcheck over random shapes`, () => {
      fc.assert(
        fc.property(shapeArb, fc.integer({ min: 0, max: 1000 }), (shape, seed) => {
          const x = c.input(shape, seed);
          const y = c.op(x);
          expect(y.shape).toEqual(shape);
          expectClose(`${c.name} forward`, y.data, Array.from(x.data, c.ref), 1e-12, 1e-11);
          const r = gradcheck(c.op, [x]);
          expect(r.ok, `${c.name} ${JSON.stringify(shape)}: ${r.message}`).toBe(true);
        }),
        { numRuns: 15, seed: 21 },
      );
    });
  }

  it('float32 path agrees with float64 for every op (33 x 17 elements)', () => {
    for (const c of cases) {
      expectF32Agrees(c.name, c.op, [c.input([33, 17], 22)], { atol: 1e-5, rtol: 1e-5 });
    }
  });

  it('pow with a tensor exponent: broadcast forward and gradcheck for both operands', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.boolean(), (seed, swap) => {
        const rng = new Rng(seed);
        const sx = swap ? [3] : [2, 3], sp = swap ? [2, 3] : [3];
        const x = rng.uniform(sx, 0.3, 2, 'float64'), p = rng.normal(sp, 0, 1, 'float64');
        const y = pow(x, p);
        expect(y.shape).toEqual([2, 3]);
        const ref = Array.from({ length: 6 }, (_, i) => x.data[swap ? i % 3 : i] ** p.data[swap ? i : i % 3]);
        expectClose('pow tensor', y.data, ref, 1e-12, 1e-12);
        const r = gradcheck(pow, [x, p]);
        expect(r.ok, r.message).toBe(true);
      }),
      { numRuns: 10, seed: 23 },
    );
  });

  it("torch's edge rules: abs'(0) = 0, relu'(0) = 0, clamp bounds pass the gradient, 0^p has no exponent gradient", () => {
    const x = tensor([0, -1, 1, 2], [4]).requireGrad();
    backward([[abs(x), tensor([1, 1, 1, 1])]]);
    expect(x.grad!.toArray()).toEqual([0, -1, 1, 1]);
    x.grad = null;
    backward([[relu(x), tensor([1, 1, 1, 1])]]);
    expect(x.grad!.toArray()).toEqual([0, 0, 1, 1]);
    x.grad = null;
    backward([[clamp(x, -1, 1), tensor([1, 1, 1, 1])]]);
    expect(x.grad!.toArray()).toEqual([1, 1, 1, 0]);
    const base = tensor([0, 0]), e = tensor([2, 0.5]).requireGrad();
    backward([[pow(base, e), tensor([1, 1])]]);
    expect(e.grad!.toArray()).toEqual([0, 0]);
  });

  it('sigmoid does not overflow in either tail; clamp needs a bound; min > max gives max', () => {
    expect(sigmoid(tensor([-1000, 1000], [2], 'float64')).toArray()).toEqual([0, 1]);
    expect(() => clamp(tensor([1]))).toThrow(/min and max/);
    expect(clamp(tensor([-5, 0, 5]), 2, 1).toArray()).toEqual([1, 1, 1]);
  });
});
