// tensorStats against a direct two-pass float64 computation (mean, then Σ(x−mean)²), on float32
// and float64 data with NaN and ±Inf mixed in, a large mean with a tiny spread (where a naive Σx²
// would cancel), all-non-finite and empty tensors, a shape mismatch, and the speed it needs.
import { describe, expect, it } from 'vitest';
import { tensorBytes, tensorStats } from '../../src/trace/stats.ts';

function reference(data: ArrayLike<number>) {
  const xs = Array.from(data).filter((x) => Number.isFinite(x));
  const nonFinite = data.length - xs.length;
  if (!xs.length) return { mean: 0, std: 0, maxAbs: 0, nonFinite };
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const std = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
  return { mean, std, maxAbs: Math.max(...xs.map(Math.abs)), nonFinite };
}

function rand(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function close(got: number, want: number, rel: number) {
  expect(Math.abs(got - want)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(want)));
}

describe('tensorStats', () => {
  it('matches a two-pass float64 reference, NaN and ±Inf excluded and counted', () => {
    const r = rand(1);
    for (const Arr of [Float32Array, Float64Array]) {
      const data = new Arr(3 * 5 * 7);
      for (let i = 0; i < data.length; i++) data[i] = (r() - 0.3) * 10;
      data[0] = NaN; // leading non-finite: the shift must skip it
      data[17] = Infinity;
      data[40] = -Infinity;
      data[data.length - 1] = NaN;
      const s = tensorStats('x', data, [3, 5, 7]);
      const want = reference(data);
      expect(s.nonFinite).toBe(4);
      close(s.mean, want.mean, 1e-12);
      close(s.std, want.std, 1e-12);
      expect(s.maxAbs).toBe(want.maxAbs);
      expect(s).toMatchObject({ name: 'x', shape: [3, 5, 7], dtype: Arr === Float32Array ? 'float32' : 'float64' });
    }
  });

  it('stays accurate when the mean dwarfs the spread', () => {
    const r = rand(2);
    const data = new Float64Array(10_000);
    for (let i = 0; i < data.length; i++) data[i] = 1e6 + (r() - 0.5) * 1e-3;
    const s = tensorStats('big', data, [10_000]);
    const want = reference(data);
    close(s.mean, want.mean, 1e-14);
    // std ≈ 2.9e-4; the naive Σx² − n·mean² would lose all digits here (1e12 vs 1e-7).
    expect(Math.abs(s.std - want.std) / want.std).toBeLessThan(1e-6);
  });

  it('all non-finite or empty tensors give zeros, never NaN (JSON has none)', () => {
    expect(tensorStats('n', new Float32Array([NaN, Infinity, -Infinity]), [3])).toMatchObject({ mean: 0, std: 0, maxAbs: 0, nonFinite: 3 });
    expect(tensorStats('e', new Float32Array(0), [0, 4])).toMatchObject({ mean: 0, std: 0, maxAbs: 0, nonFinite: 0, shape: [0, 4] });
    expect(tensorStats('s', new Float32Array([-2.5]), [])).toMatchObject({ mean: -2.5, std: 0, maxAbs: 2.5, shape: [] });
  });

  it('names the tensor when the shape does not fit the data', () => {
    expect(() => tensorStats('hidden.2', new Float32Array(10), [2, 4])).toThrow(/hidden\.2.*\[2, 4\].*8 elements.*10/);
  });

  it('counts bytes by dtype', () => {
    expect(tensorBytes({ shape: [2, 3], dtype: 'float32' })).toBe(24);
    expect(tensorBytes({ shape: [2, 3], dtype: 'float64' })).toBe(48);
    expect(tensorBytes({ shape: [], dtype: 'float32' })).toBe(4);
  });
});
