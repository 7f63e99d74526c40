import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { tsWorker } from '../../src/util/tsWorker.ts';
import { philox4x32, Rng } from '../../src/tensor/rng.ts';

const hex = (a: Uint32Array) => Array.from(a, (x) => x.toString(16).padStart(8, '0')).join(' ');

describe('Philox4x32-10', () => {
  // Known-answer vectors from the Random123 distribution (kat_vectors, philox4x32 10 rounds).
  it.each([
    [[0, 0, 0, 0], [0, 0], '6627e8d5 e169c58d bc57ac4c 9b00dbd8'],
    [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], '408f276d 41c83b0e a20bc7c6 6d5451fd'],
    [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], 'd16cfe09 94fdcceb 5001e420 24126ea1'],
  ])('matches the Random123 known answer %#', (ctr, key, want) => {
    const out = new Uint32Array(4);
    philox4x32(ctr, key, out);
    expect(hex(out)).toBe(want);
  });
});

describe('Rng streams', () => {
  it('is a pure function of (seed, stream, counter): state round-trips', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 50 }), (seed, skip) => {
      const a = new Rng(seed);
      a.uniformArray(skip * 4);
      const b = Rng.fromState(a.state());
      expect(Array.from(b.normalArray(9))).toEqual(Array.from(a.normalArray(9)));
    }), { numRuns: 50, seed: 3 });
  });

  it('child streams differ from the parent and from each other', () => {
    const r = new Rng(1);
    const x = r.child('encoder').uniformArray(8), y = r.child('student').uniformArray(8), z = r.uniformArray(8);
    expect(Array.from(x)).not.toEqual(Array.from(y));
    expect(Array.from(x)).not.toEqual(Array.from(z));
    expect(Array.from(r.child('encoder').uniformArray(8))).toEqual(Array.from(x));
  });

  it('uniforms lie in (0,1) and normals have mean 0, variance 1 (n = 200k, 5 sigma)', () => {
    const n = 200_000;
    const u = new Rng(42).uniformArray(n);
    expect(Math.min(...u.subarray(0, 50000))).toBeGreaterThan(0);
    expect(Math.max(...u.subarray(0, 50000))).toBeLessThan(1);
    const z = new Rng(43).normalArray(n);
    let m = 0, v = 0;
    for (const x of z) m += x;
    m /= n;
    for (const x of z) v += (x - m) ** 2;
    v /= n;
    expect(Math.abs(m)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(v - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
  });

  it('randint covers [lo, hi) uniformly (chi-square, 10 bins)', () => {
    const n = 100_000;
    const k = new Rng(5).randintArray(3, 13, n);
    const counts = new Array(10).fill(0);
    for (const x of k) counts[x - 3]++;
    const e = n / 10;
    const chi2 = counts.reduce((s, c) => s + (c - e) ** 2 / e, 0);
    expect(chi2).toBeLessThan(27.9); // p = 0.001 at 9 degrees of freedom
  });

  it('permutation is a permutation', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 300 }), fc.nat(), (n, seed) => {
      const p = Array.from(new Rng(seed).permutation(n)).sort((a, b) => a - b);
      expect(p).toEqual(Array.from({ length: n }, (_, i) => i));
    }), { numRuns: 40, seed: 4 });
  });

  it('gives the same numbers in a worker thread', async () => {
    const url = new URL('./rng-worker.ts', import.meta.url);
    const w = tsWorker(url, { workerData: { seed: 99, stream: 'data' } });
    const got: number[] = await new Promise((res, rej) => { w.once('message', res); w.once('error', rej); });
    await w.terminate();
    expect(got).toEqual(Array.from(new Rng(99).child('data').normalArray(16)));
  });
});
