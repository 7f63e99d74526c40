// Shared by the PyTorch-parity and gradient tests of model pieces: float64 storage for a module
// (central differences need it), parity against a fixture relative to the reference's scale, and
// central differences in every parameter element against the analytic gradient.
import { expect } from 'vitest';
import type { Module } from '../../src/nn/module.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/index.ts';
import { noGrad } from '../../src/autograd/tape.ts';
import { expectClose } from '../kernels/expectClose.ts';

/** Test only: every parameter and buffer of m as float64 storage (same values). */
export function toFloat64(m: Module): void {
  for (const [, t] of m.stateDict()) {
    const w = t as unknown as { data: Float64Array; dtype: string };
    w.data = Float64Array.from(t.data);
    w.dtype = 'float64';
  }
}

/** got ≈ ref element-wise within rel·max|ref| + rel (float32 forward against a float64 fixture). */
export function expectParity(what: string, got: ArrayLike<number>, ref: ArrayLike<number>, rel = 1e-5): void {
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  expect(got.length, what).toBe(ref.length);
  expectClose(what, got, ref, rel * scale, rel);
}

/**
 * Central differences (step 1e-6) of loss() in every parameter element of m (float64: toFloat64)
 * against the analytic gradient of backward(loss()), to abs + 1e-5·|numeric|. Returns the count.
 */
export function checkEveryParameter(m: Module, loss: () => Tensor, abs = 1e-6): number {
  m.zeroGrad();
  backward(loss());
  const lossOf = (): number => noGrad(() => loss().item());
  const eps = 1e-6;
  let checked = 0;
  for (const [n, t] of m.namedParameters()) {
    const g = t.grad!.data;
    for (let j = 0; j < t.size; j++) {
      const old = t.data[j];
      t.data[j] = old + eps; const lp = lossOf();
      t.data[j] = old - eps; const lm = lossOf();
      t.data[j] = old;
      const num = (lp - lm) / (2 * eps);
      expect(Math.abs(num - g[j]), `${n}[${j}]: analytic ${g[j]} vs numeric ${num}`).toBeLessThan(abs + 1e-5 * Math.abs(num));
      checked++;
    }
  }
  return checked;
}
