import { describe, expect, it } from 'vitest';
import { Loader, type Batch } from '../../src/data/loader.ts';
import { builtinDataset } from '../../src/data/builtin.ts';
import { checkIndex, type ImageDataset } from '../../src/data/dataset.ts';
import { tidy } from '../../src/tensor/tidy.ts';
import { expectSame } from './files.ts';

/** Sample i's pixel k is i + k/1000 (so a batch shows which sample and whether it was flipped); label i mod 3. */
function indexSet(count: number, C = 2, H = 3, W = 4): ImageDataset {
  const ds: ImageDataset = {
    name: 'index-set', count, channels: C, height: H, width: W, numClasses: 3, classNames: ['a', 'b', 'c'],
    get(i, out, offset) {
      checkIndex(ds, i);
      for (let k = 0; k < C * H * W; k++) out[offset + k] = i + k / 1000;
      return i % 3;
    },
    label: (i) => i % 3,
  };
  return ds;
}

/** A batch as plain arrays (the tensor is pooled and may be recycled). */
const snap = (b: Batch) => ({ x: Array.from(b.x.data), y: Array.from(b.y), indices: Array.from(b.indices), epoch: b.epoch, cursor: b.cursor });
const take = (l: Loader, n: number) => Array.from({ length: n }, () => tidy(() => snap(l.next())));

describe('Loader', () => {
  it('drops the last partial batch, visits each sample at most once per epoch, and fills x, y from the dataset', () => {
    const ds = indexSet(10);
    const l = new Loader(ds, { batchSize: 3, seed: 1 });
    expect(l.batchesPerEpoch).toBe(3);
    const bs = take(l, 6);
    expect(bs.map((b) => [b.epoch, b.cursor])).toEqual([[0, 0], [0, 3], [0, 6], [1, 0], [1, 3], [1, 6]]);
    for (const e of [0, 1]) {
      const seen = bs.filter((b) => b.epoch === e).flatMap((b) => b.indices);
      expect(new Set(seen).size).toBe(9);
      for (const i of seen) expect(i >= 0 && i < 10).toBe(true);
    }
    for (const b of bs) {
      expect(b.y).toEqual(b.indices.map((i) => i % 3));
      // first value of each sample is its index (no flips asked)
      expect(b.indices.map((_, k) => b.x[k * 24])).toEqual(b.indices);
    }
  });

  it('shuffles reproducibly per seed, differently across epochs and seeds', () => {
    const ds = indexSet(50);
    const a = take(new Loader(ds, { batchSize: 10, seed: 7 }), 10);
    const b = take(new Loader(ds, { batchSize: 10, seed: 7 }), 10);
    const c = take(new Loader(ds, { batchSize: 10, seed: 8 }), 10);
    const order = (bs: typeof a, e: number) => bs.filter((x) => x.epoch === e).flatMap((x) => x.indices);
    expect(order(a, 0)).toEqual(order(b, 0));
    expect(order(a, 1)).toEqual(order(b, 1));
    expect(order(a, 0)).not.toEqual(order(a, 1));
    expect(order(a, 0)).not.toEqual(order(c, 0));
    expect([...order(a, 1)].sort((p, q) => p - q)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('reproduces epoch e on its own, without stepping through the epochs before it', () => {
    const ds = indexSet(20);
    const walked = take(new Loader(ds, { batchSize: 4, seed: 3 }), 5 * 4).filter((b) => b.epoch === 3);
    const jumped = take(new Loader(ds, { batchSize: 4, seed: 3 }).restore({ seed: 3, epoch: 3, cursor: 0, size: 20 }), 5);
    expect(jumped).toEqual(walked);
  });

  it('a run resumed from serialised state sees exactly the batches of an uninterrupted run (with flips)', () => {
    const ds = builtinDataset({ count: 37, seed: 5, size: 8 });
    const opts = { batchSize: 8, seed: 42, hflip: true };
    const whole = take(new Loader(ds, opts), 17);
    const first = new Loader(ds, opts);
    const before = take(first, 6);
    const saved = JSON.stringify(first.state());
    const resumed = new Loader(ds, opts).restore(JSON.parse(saved));
    const after = take(resumed, 11);
    expect(before).toEqual(whole.slice(0, 6));
    for (let k = 0; k < 11; k++) {
      expectSame(after[k].x, whole[6 + k].x, `batch ${6 + k} pixels`);
      expect({ ...after[k], x: null }).toEqual({ ...whole[6 + k], x: null });
    }
    expect([whole[6].epoch, whole[6].cursor, whole[16].epoch]).toEqual([1, 16, 4]); // resumes mid-epoch, crosses epoch boundaries
  });

  it('flips about half the samples, each either as stored or mirrored, chosen per epoch', () => {
    const ds = indexSet(400, 1, 2, 3);
    const l = new Loader(ds, { batchSize: 400, seed: 11, hflip: true });
    const flippedIn = (b: ReturnType<typeof snap>) => b.indices.map((i, k) => {
      const got = b.x.slice(k * 6, k * 6 + 6);
      const plain = [0, 1, 2, 3, 4, 5].map((j) => Math.fround(i + j / 1000));
      const mirror = [2, 1, 0, 5, 4, 3].map((j) => Math.fround(i + j / 1000));
      if (got.every((v, j) => v === plain[j])) return false;
      if (got.every((v, j) => v === mirror[j])) return true;
      throw new Error(`sample ${i} is neither stored nor mirrored: ${got}`);
    });
    const [e0, e1] = take(l, 2).map(flippedIn);
    const n0 = e0.filter(Boolean).length;
    expect(n0).toBeGreaterThan(150); // Binomial(400, 1/2): mean 200, sd 10
    expect(n0).toBeLessThan(250);
    expect(e0).not.toEqual(e1);
    const plain = take(new Loader(ds, { batchSize: 400, seed: 11 }), 1).map(flippedIn)[0];
    expect(plain.some(Boolean)).toBe(false);
  });

  it('filters classes and takes a fixed seeded subset', () => {
    const ds = indexSet(60);
    const l = new Loader(ds, { batchSize: 5, seed: 2, classes: [0, 2] });
    expect(l.pool.length).toBe(40);
    for (const b of take(l, 16)) for (const y of b.y) expect([0, 2]).toContain(y);
    const s = new Loader(ds, { batchSize: 5, seed: 2, classes: [1], subset: 10 });
    expect(s.pool.length).toBe(10);
    for (const i of s.pool) expect(i % 3).toBe(1);
    const seen = new Set(take(s, 6).flatMap((b) => b.indices)); // 3 epochs of 2 batches
    expect([...seen].sort((p, q) => p - q)).toEqual(Array.from(s.pool));
    expect(Array.from(new Loader(ds, { batchSize: 5, seed: 2, classes: [1], subset: 10 }).pool)).toEqual(Array.from(s.pool));
    expect(Array.from(new Loader(ds, { batchSize: 5, seed: 3, classes: [1], subset: 10 }).pool)).not.toEqual(Array.from(s.pool));
  });

  it('allocates x from the pool as (B, C, H, W): released by the caller\'s tidy', () => {
    const l = new Loader(indexSet(8), { batchSize: 4, seed: 0 });
    let inner!: Batch;
    tidy(() => { inner = l.next(); expect(inner.x.shape).toEqual([4, 2, 3, 4]); });
    expect(inner.x.disposed).toBe(true);
    const kept = tidy(() => l.next());
    expect(kept.x.disposed).toBe(false);
  });

  it('explains bad options and mismatched state', () => {
    const ds = indexSet(10);
    expect(() => new Loader(ds, { batchSize: 11, seed: 0 })).toThrow(/index-set has 10 samples after filtering, fewer than one batch of 11/);
    expect(() => new Loader(ds, { batchSize: 2, seed: 0, classes: [3] })).toThrow(/class 3 not in index-set/);
    expect(() => new Loader(ds, { batchSize: 2, seed: 0, subset: 11 })).toThrow(/subset of 11 asked, but index-set has only 10/);
    const l = new Loader(ds, { batchSize: 2, seed: 0 });
    expect(() => l.restore({ seed: 1, epoch: 0, cursor: 0, size: 10 })).toThrow(/seed 1, this loader was built with seed 0/);
    expect(() => l.restore({ seed: 0, epoch: 0, cursor: 0, size: 9 })).toThrow(/saved over 9 samples, this loader has 10/);
    expect(() => l.restore({ seed: 0, epoch: 0, cursor: 3, size: 10 })).toThrow(/invalid position/);
  });
});
