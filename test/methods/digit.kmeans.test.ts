// DiGIT's k-means tokenizer (src/methods/digit/kmeans.ts): Lloyd from a given init against
// scipy.cluster.vq.kmeans2 (fixture test/fixtures/digit/kmeans.safetensors, written by
// test/fixtures/make_digit_kmeans_fixture.py), k-means++ + Lloyd on well-separated blobs reaching
// scipy's objective and partition, and the invariants as fast-check properties: each row goes to
// its nearest centroid (brute force), inertia never increases over Lloyd iterations, k-means++
// picks distinct rows, assignment is deterministic and batch-independent; save/load round trip.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { fromData } from '../../src/tensor/tensor.ts';
import { KMeansTokenizer, assignRows, kmeansPlusPlus, lloyd } from '../../src/methods/digit/kmeans.ts';
import { expectClose } from '../kernels/expectClose.ts';

const fixture = readSafetensors(fileURLToPath(new URL('../fixtures/digit/kmeans.safetensors', import.meta.url))).tensors;
const get = (name: string) => {
  const t = fixture.get(name);
  if (!t) throw new Error(`fixture has no ${name}`);
  return t;
};
const ITERS = 10; // make_digit_kmeans_fixture.py ITERS

function sqDist(x: ArrayLike<number>, i: number, c: ArrayLike<number>, j: number, d: number): number {
  let s = 0;
  for (let t = 0; t < d; t++) s += (x[i * d + t] - c[j * d + t]) ** 2;
  return s;
}

/** Same partition up to renaming the clusters. */
function samePartition(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  const ab = new Map<number, number>(), ba = new Map<number, number>();
  for (let i = 0; i < a.length; i++) {
    if ((ab.get(a[i]) ?? b[i]) !== b[i] || (ba.get(b[i]) ?? a[i]) !== a[i]) return false;
    ab.set(a[i], b[i]);
    ba.set(b[i], a[i]);
  }
  return true;
}

describe('k-means against scipy.cluster.vq.kmeans2 (fixture)', () => {
  for (const set of ['sep', 'mix', 'empty']) {
    it(`${set}: same init and ${ITERS} iterations give kmeans2's centroids, labels and inertia`, () => {
      const x = get(`${set}.x`), init = get(`${set}.init`);
      const [n, d] = x.shape, k = init.shape[0];
      const r = lloyd(x.data, n, d, init.data, k, ITERS);
      expectClose(`${set} centroids`, r.centroids, get(`${set}.centroids`).data, 1e-5, 1e-6);
      expect(Array.from(r.labels)).toEqual(Array.from(get(`${set}.labels`).data));
      const ref = get(`${set}.inertia`).data[0];
      expect(Math.abs(r.inertia[ITERS] - ref) / ref).toBeLessThan(1e-6);
      if (set === 'empty') {
        expect(r.emptyClusters).toBe(ITERS); // centroid 2 sits at 100: empty on every iteration
        expect(Array.from(r.centroids.subarray(2 * d, 3 * d))).toEqual(Array.from(init.data.subarray(2 * d, 3 * d)));
      } else {
        expect(r.emptyClusters).toBe(0);
      }
    });
  }

  it('sep: k-means++ and Lloyd from several seeds reach kmeans2\'s objective and partition', () => {
    const x = get('sep.x');
    const [n, d] = x.shape, k = get('sep.init').shape[0];
    const ref = get('sep.inertia').data[0];
    for (const seed of [0, 1, 2, 3]) {
      const { fit } = KMeansTokenizer.fit(x.data, n, d, { k, iters: ITERS }, new Rng(seed));
      expect(Math.abs(fit.inertia[ITERS] - ref) / ref, `seed ${seed}`).toBeLessThan(1e-6);
      expect(samePartition(fit.labels, get('sep.labels').data), `seed ${seed}`).toBe(true);
    }
  });
});

const dataArb = fc.record({
  n: fc.integer({ min: 1, max: 60 }), d: fc.integer({ min: 1, max: 6 }), kFrac: fc.double({ min: 0, max: 1, noNaN: true }),
  seed: fc.nat(1e6), dup: fc.boolean(),
});

function makeData(n: number, d: number, seed: number, dup: boolean): Float32Array {
  const x = Float32Array.from(new Rng(seed).normalArray(n * d));
  // with dup, rows repeat (few distinct points): exercises zero weights in k-means++ and ties
  if (dup) for (let i = 0; i < n; i++) x.copyWithin(i * d, (i % 3) * d, (i % 3) * d + d);
  return x;
}

describe('k-means properties', () => {
  it('each row is assigned to its nearest centroid (expanded-distance argmin = brute force)', () => {
    fc.assert(fc.property(dataArb, fc.integer({ min: 1, max: 12 }), ({ n, d, seed }, k) => {
      const x = makeData(n, d, seed, false);
      const c = Float32Array.from(new Rng(seed + 1).normalArray(k * d));
      const { labels, inertia } = assignRows(x, n, d, c, k);
      let total = 0;
      for (let i = 0; i < n; i++) {
        let best = Infinity;
        for (let j = 0; j < k; j++) best = Math.min(best, sqDist(x, i, c, j, d));
        const got = sqDist(x, i, c, labels[i], d);
        expect(got).toBeLessThanOrEqual(best + 1e-9 * (1 + best));
        total += got;
      }
      expect(Math.abs(inertia - total)).toBeLessThanOrEqual(1e-9 * (1 + total));
    }), { numRuns: 60, seed: 14 });
  });

  it('inertia never increases over Lloyd iterations (also with duplicate rows and empty clusters)', () => {
    fc.assert(fc.property(dataArb, ({ n, d, kFrac, seed, dup }) => {
      const x = makeData(n, d, seed, dup);
      const k = 1 + Math.floor(kFrac * (n - 1));
      const { fit } = KMeansTokenizer.fit(x, n, d, { k, iters: 8 }, new Rng(seed));
      for (let t = 1; t < fit.inertia.length; t++) {
        expect(fit.inertia[t]).toBeLessThanOrEqual(fit.inertia[t - 1] * (1 + 1e-12) + 1e-12);
      }
    }), { numRuns: 60, seed: 15 });
  });

  it('k-means++ picks distinct rows (all k of them, even when rows repeat)', () => {
    fc.assert(fc.property(dataArb, ({ n, d, kFrac, seed, dup }) => {
      const x = makeData(n, d, seed, dup);
      const k = 1 + Math.floor(kFrac * (n - 1));
      const idx = kmeansPlusPlus(x, n, d, k, new Rng(seed));
      expect(idx.length).toBe(k);
      expect(new Set(idx).size).toBe(k);
      for (const i of idx) expect(i >= 0 && i < n).toBe(true);
    }), { numRuns: 80, seed: 16 });
  });

  it('k-means++ prefers far points: with two tight groups and k = 2, the seeds fall in different groups', () => {
    const d = 2, x: number[] = [];
    for (let i = 0; i < 20; i++) x.push(i * 1e-3, 0);
    for (let i = 0; i < 20; i++) x.push(100 + i * 1e-3, 0);
    for (let seed = 0; seed < 20; seed++) {
      const [a, b] = kmeansPlusPlus(x, 40, d, 2, new Rng(seed));
      expect(a < 20, `seed ${seed}`).not.toBe(b < 20);
    }
  });

  it('assign is deterministic and batch-independent; fit is reproducible from the seed', () => {
    fc.assert(fc.property(dataArb, ({ n, d, kFrac, seed }) => {
      const x = makeData(n, d, seed, false);
      const k = 1 + Math.floor(kFrac * (n - 1));
      const a = KMeansTokenizer.fit(x, n, d, { k, iters: 3 }, new Rng(seed)).tokenizer;
      const b = KMeansTokenizer.fit(x, n, d, { k, iters: 3 }, new Rng(seed)).tokenizer;
      expect(Array.from(a.centroids)).toEqual(Array.from(b.centroids));
      const all = a.assign(x);
      const split = Math.floor(n / 2);
      const parts = [...a.assign(x.subarray(0, split * d)), ...a.assign(fromData(x.slice(split * d), [n - split, d]))];
      expect(parts).toEqual(Array.from(all));
      for (const id of all) expect(id >= 0 && id < k).toBe(true);
    }), { numRuns: 30, seed: 17 });
  });
});

describe('KMeansTokenizer save/load and errors', () => {
  it('round-trips through safetensors (centroids (K, D)) and assigns identically', () => {
    const x = makeData(50, 3, 5, false);
    const tok = KMeansTokenizer.fit(x, 50, 3, { k: 7, iters: 5 }, new Rng(5)).tokenizer;
    const dir = mkdtempSync(path.join(tmpdir(), 'digit-kmeans-'));
    try {
      const file = path.join(dir, 'tokenizer.safetensors');
      tok.save(file);
      const back = KMeansTokenizer.load(file);
      expect([back.k, back.dim]).toEqual([7, 3]);
      expect(Array.from(back.centroids)).toEqual(Array.from(tok.centroids));
      expect(Array.from(back.assign(x))).toEqual(Array.from(tok.assign(x)));
      const { tensors } = readSafetensors(file);
      expect(tensors.get('centroids')?.shape).toEqual([7, 3]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the field and what was expected', () => {
    const x = makeData(4, 2, 1, false);
    expect(() => KMeansTokenizer.fit(x, 4, 2, { k: 5, iters: 1 }, new Rng(0))).toThrow(/k must be an integer in \[1, 4\]/);
    expect(() => KMeansTokenizer.fit(x, 4, 2, { k: 2, iters: -1 }, new Rng(0))).toThrow(/iters must be an integer >= 0/);
    expect(() => KMeansTokenizer.fit(x, 3, 2, { k: 2, iters: 1 }, new Rng(0))).toThrow(/expected n\*d = 3\*2 = 6/);
    const tok = KMeansTokenizer.fit(x, 4, 2, { k: 2, iters: 1 }, new Rng(0)).tokenizer;
    expect(() => tok.assign(new Float32Array(3))).toThrow(/not rows of dim 2/);
    expect(() => KMeansTokenizer.fromTensors({})).toThrow(/no tensor 'centroids'/);
    expect(() => KMeansTokenizer.fromTensors({ centroids: fromData(new Float32Array(4), [4]) })).toThrow(/must be \(K, D\)/);
  });
});
