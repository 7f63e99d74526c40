// The fused adaLN ops against their composites (forward and every input gradient, float64, and
// float32 on the dispatched kernels), gradcheck by finite differences, and the packed-qkv attention
// op against permute/slice + scaledDotProductAttention + permute.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  Tape, add, backward, gatedResidual, gradcheck, layerNorm, layerNormModulate, mul, permute, qkvAttention,
  reshape, scaledDotProductAttention, slice, unsqueeze, withTape,
} from '../../src/autograd/index.ts';
import { modulate } from '../../src/autograd/ops/modulate.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { cast, tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees } from './agreeF32.ts';

const RUNS = { numRuns: 12, seed: 9 };
const dimArb = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 7 }), fc.nat(1e5));

/** y and input gradients of f under one random cotangent. */
function run(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], dtype: 'float32' | 'float64'): { y: Tensor; grads: Tensor[] } {
  const xs = inputs.map((x) => cast(x, dtype).requireGrad());
  const tape = new Tape();
  const y = withTape(tape, () => f(...xs));
  backward([[y, tensor(new Rng(5).normalArray(y.size), y.shape, dtype)]], { tape });
  return { y, grads: xs.map((x) => x.grad!) };
}

function expectSame(what: string, fused: (...xs: Tensor[]) => Tensor, composite: (...xs: Tensor[]) => Tensor, inputs: Tensor[], dtype: 'float32' | 'float64', tol: number): void {
  const a = run(fused, inputs, dtype), b = run(composite, inputs, dtype);
  expect(a.y.shape).toEqual(b.y.shape);
  expectClose(`${what} ${dtype} forward`, a.y.data, b.y.data, tol, tol);
  a.grads.forEach((g, i) => expectClose(`${what} ${dtype} grad ${i}`, g.data, b.grads[i].data, tol, tol));
}

const gatedComposite = (x: Tensor, gate: Tensor, y: Tensor) => add(x, mul(unsqueeze(gate, 1), y));
const lnmComposite = (eps: number) => (x: Tensor, sh: Tensor, sc: Tensor) => modulate(layerNorm(x, x.shape[2], null, null, eps), sh, sc);

describe('gatedResidual', () => {
  it('equals x + gate[:, None] * y (forward, gradients) and passes gradcheck', () => {
    fc.assert(fc.property(dimArb, ([b, n, c, seed]) => {
      const rng = new Rng(seed);
      const inputs = [rng.normal([b, n, c], 0, 1, 'float64'), rng.normal([b, c], 0, 1, 'float64'), rng.normal([b, n, c], 0, 1, 'float64')];
      expectSame('gatedResidual', gatedResidual, gatedComposite, inputs, 'float64', 1e-12);
      expectSame('gatedResidual', gatedResidual, gatedComposite, inputs, 'float32', 2e-5);
      const r = gradcheck(gatedResidual, inputs);
      expect(r.ok, r.message).toBe(true);
    }), RUNS);
  });

  it('one tensor as x and y accumulates both gradients', () => {
    const rng = new Rng(2);
    const x = rng.normal([2, 3, 4], 0, 1, 'float64'), g = rng.normal([2, 4], 0, 1, 'float64');
    const r = gradcheck((a, gg) => gatedResidual(a, gg, a), [x, g]);
    expect(r.ok, r.message).toBe(true);
  });

  it('rejects a gate that is not (B, C)', () => {
    const rng = new Rng(0);
    expect(() => gatedResidual(rng.normal([2, 3, 4]), rng.normal([2, 1, 4]), rng.normal([2, 3, 4]))).toThrow(/gate must be \(2, 4\)/);
  });
});

describe('layerNormModulate', () => {
  it('equals modulate(layerNorm(x)) (forward, gradients), float32 agrees with float64, gradcheck', () => {
    fc.assert(fc.property(dimArb, fc.constantFrom(1e-6, 1e-5), ([b, n, c, seed], eps) => {
      const rng = new Rng(seed);
      const inputs = [rng.normal([b, n, c], 0, 2, 'float64'), rng.normal([b, c], 0, 1, 'float64'), rng.normal([b, c], 0, 1, 'float64')];
      expectSame('layerNormModulate', (x, sh, sc) => layerNormModulate(x, sh, sc, eps), lnmComposite(eps), inputs, 'float64', 1e-10);
      if (c > 1) {
        expectF32Agrees('layerNormModulate', (x, sh, sc) => layerNormModulate(x, sh, sc, eps), inputs, { atol: 1e-4, rtol: 1e-4 });
        const r = gradcheck((x, sh, sc) => layerNormModulate(x, sh, sc, eps), inputs, { atol: 1e-5, rtol: 1e-4 });
        expect(r.ok, r.message).toBe(true);
      }
    }), RUNS);
  });

  it('float32 fused and composite agree on a SiT-sized block (B 2, N 64, C 192)', () => {
    const rng = new Rng(4);
    const inputs = [rng.normal([2, 64, 192], 0, 1, 'float64'), rng.normal([2, 192], 0, 0.5, 'float64'), rng.normal([2, 192], 0, 0.5, 'float64')];
    expectSame('layerNormModulate', (x, sh, sc) => layerNormModulate(x, sh, sc), lnmComposite(1e-6), inputs, 'float32', 2e-5);
    expectSame('gatedResidual', gatedResidual, gatedComposite, [inputs[0], inputs[1], rng.normal([2, 64, 192], 0, 1, 'float64')], 'float32', 1e-5);
  });
});

describe('qkvAttention on the packed kernel', () => {
  /** timm's layout by permute + slice + sdpa + permute (the pre-fusion implementation). */
  const composite = (heads: number) => (qkv: Tensor) => {
    const [b, n, c3] = qkv.shape, d = c3 / (3 * heads);
    const t = permute(reshape(qkv, [b, n, 3, heads, d]), [2, 0, 3, 1, 4]); // (3, B, H, N, D)
    const part = (i: number) => reshape(slice(t, 0, i, i + 1), [b, heads, n, d]);
    return reshape(permute(scaledDotProductAttention(part(0), part(1), part(2)), [0, 2, 1, 3]), [b, n, heads * d]);
  };

  it('equals the permute/slice/sdpa composite, float64 and float32, incl. N = 100 (two query blocks)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 6 }), fc.nat(1e5), (b, n, h, d, seed) => {
      const qkv = new Rng(seed).normal([b, n, 3 * h * d], 0, 1, 'float64');
      expectSame('qkvAttention', (x) => qkvAttention(x, h), composite(h), [qkv], 'float64', 1e-12);
      expectSame('qkvAttention', (x) => qkvAttention(x, h), composite(h), [qkv], 'float32', 2e-5);
    }), RUNS);
    const big = new Rng(1).normal([2, 100, 3 * 2 * 64], 0, 1, 'float64');
    expectSame('qkvAttention N=100', (x) => qkvAttention(x, 2), composite(2), [big], 'float32', 2e-5);
  });
});
