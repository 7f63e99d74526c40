// Test helpers for kernel tests: an array comparison whose failure message shows the first
// values and the max difference (llm.c's test_gpt2 style), a seeded array filler, and central
// finite differences of a scalar function in float64.
import type { FArray } from '../../src/kernels/types.ts';

/** Throws unless |a - b| <= atol + rtol * |b| elementwise (b is the reference). */
export function expectClose(
  what: string, a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number,
): void {
  if (a.length !== b.length) throw new Error(`${what}: length ${a.length} != reference ${b.length}`);
  let maxDiff = 0, worst = -1, bad = -1;
  for (let i = 0; i < a.length; i++) {
    const diff = Math.abs(a[i] - b[i]);
    // NaN anywhere is a failure; a NaN diff never passes the comparison below.
    if (!(diff <= atol + rtol * Math.abs(b[i]))) { if (bad < 0) bad = i; }
    if (!(diff <= maxDiff)) { maxDiff = diff; worst = i; }
  }
  if (bad >= 0) {
    const first = (x: ArrayLike<number>): string =>
      Array.from({ length: Math.min(6, x.length) }, (_, i) => x[i].toPrecision(7)).join(', ');
    throw new Error(
      `${what}: mismatch (atol ${atol}, rtol ${rtol}), n=${a.length}, max diff ${maxDiff} at [${worst}] ` +
      `(${a[worst]} vs ref ${b[worst]}); first bad [${bad}] ${a[bad]} vs ${b[bad]}\n` +
      `  got: ${first(a)}\n  ref: ${first(b)}`,
    );
  }
}

/** Deterministic uniform values in [lo, hi) from a 32-bit seed (mulberry32). */
export function fillRandom<T extends FArray>(arr: T, seed: number, lo = -1, hi = 1): T {
  let s = seed >>> 0;
  for (let i = 0; i < arr.length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    arr[i] = lo + (hi - lo) * u;
  }
  return arr;
}

/** d loss / d x[i] for every i by central differences; x is perturbed in place and restored. */
export function finiteDiff(x: Float64Array, loss: () => number, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    x[i] = x0 + h;
    const lp = loss();
    x[i] = x0 - h;
    const lm = loss();
    x[i] = x0;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

/** sum_i a[i] * w[i]: the scalar loss whose gradient wrt a is w. */
export function dot(a: ArrayLike<number>, w: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * w[i];
  return s;
}
