// Tests for the EMA teacher update: the closed form for a constant source, a scalar loop for
// changing sources, exact copyFrom, clones that outlive tidy, and name/shape mismatch errors.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Ema } from '../../src/optim/ema.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { tidy } from '../../src/tensor/tidy.ts';
import { expectClose, fillRandom } from '../kernels/expectClose.ts';

describe('Ema', () => {
  it('constant source s: after n updates target = s + d^n (x0 - s)', () => {
    fc.assert(fc.property(
      fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: 1, maxLength: 8 }),
      fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 1e6 }),
      fc.constantFrom('float32' as const, 'float64' as const),
      (x0, d, n, seed, dtype) => {
        const s = fillRandom(new Float64Array(x0.length), seed, -10, 10);
        const target = tensor(x0, [x0.length], dtype), source = tensor(s, [x0.length], dtype);
        const ema = new Ema([['w', target]], [['w', source]], d);
        for (let i = 0; i < n; i++) ema.update();
        // Reference in the storage precision of the inputs.
        const r = dtype === 'float32' ? Math.fround : (x: number) => x;
        const want = x0.map((x, i) => r(s[i]) + d ** n * (r(x) - r(s[i])));
        const tol = dtype === 'float32' ? 2e-5 : 1e-12;
        expectClose(`ema ${dtype} d=${d} n=${n}`, target.data, want, tol, tol);
      },
    ), { seed: 3, numRuns: 80 });
  });

  it('changing sources match a scalar loop; update(decay) overrides the default', () => {
    const names = ['blocks.0.mlp.fc1.weight', 'final_layer.linear.bias'];
    const mk = (seed: number): [string, Tensor][] => names.map((n, i) => [n, tensor(fillRandom(new Float64Array(5 + i), seed + i), [5 + i], 'float64')]);
    const target = mk(1), source = mk(50);
    const ref = target.map(([, t]) => Array.from(t.data));
    const ema = new Ema(target, source, 0.99);
    for (let step = 0; step < 7; step++) {
      source.forEach(([, s], i) => s.data.set(fillRandom(new Float64Array(s.size), 100 * step + i)));
      const d = step === 3 ? 0.5 : 0.99;
      if (step === 3) ema.update(0.5); else ema.update();
      ref.forEach((x, i) => x.forEach((v, j) => { x[j] = d * v + (1 - d) * source[i][1].data[j]; }));
    }
    target.forEach(([n, t], i) => expectClose(n, t.data, ref[i], 1e-14, 1e-14));
    expect(ema.target.get(names[0])).toBe(target[0][1]);
  });

  it('copyFrom is an exact copy even over inf/NaN, and Ema.of clones outside tidy', () => {
    const src = tensor([1.5, -2, 3e-30]);
    const tgt = tensor([Infinity, NaN, 0]);
    const ema = new Ema([['p', tgt]], [['p', src]]);
    ema.copyFrom();
    expect(Array.from(tgt.data)).toEqual(Array.from(src.data));

    const p = tensor([1, 2, 3]).requireGrad();
    let teacher: Ema | null = null;
    tidy(() => { teacher = Ema.of([['p', p]], 0.5); return null; }); // not returned: tidy would free tracked tensors
    if (!teacher) throw new Error('unreachable');
    const t = (teacher as Ema).target.get('p')!;
    expect(t.disposed).toBe(false);
    expect(t.requiresGrad).toBe(false);
    expect(t.data.buffer).not.toBe(p.data.buffer);
    p.data.set([3, 4, 5]);
    (teacher as Ema).update();
    expect(Array.from(t.data)).toEqual([2, 3, 4]);
    expect((teacher as Ema).decay).toBe(0.5);
  });

  it('rejects mismatched names or shapes, bad decay and frozen targets', () => {
    const a = tensor([1, 2]), b = tensor([1, 2, 3]);
    expect(() => new Ema([['x', a]], [['y', a]])).toThrow(/target 'x' has no source/);
    expect(() => new Ema([['x', a]], [['x', a], ['y', b]])).toThrow(/source parameters with no target: y/);
    expect(() => new Ema([['x', a]], [['x', b]])).toThrow(/'x' has shape \[2\] in the target, \[3\] in the source/);
    expect(() => new Ema([['x', a]], [['x', tensor([0, 0])]], 1.5)).toThrow(/decay must be in \[0, 1\]/);
    const frozen = tensor([0, 0]).freeze();
    const ema = new Ema([['x', frozen]], [['x', a]]);
    expect(() => ema.update()).toThrow(/frozen/);
    expect(() => ema.copyFrom()).toThrow(/frozen/);
  });
});
