import { describe, expect, it } from 'vitest';
import { builtinDataset, BUILTIN_TEST_OFFSET } from '../../src/data/builtin.ts';
import { makeShapes, SHAPE_CLASSES } from '../../src/data/shapes.ts';
import { expectSame } from './files.ts';

describe('builtin dataset', () => {
  it('get(i) equals the bulk-generated sample i, label included', () => {
    const ds = builtinDataset({ count: 25, seed: 11 });
    const bulk = makeShapes(25, 11);
    const sz = 3 * 32 * 32;
    const out = new Float32Array(sz + 5);
    for (const i of [0, 1, 9, 10, 24]) {
      const label = ds.get(i, out, 5);
      expect(label).toBe(bulk.labels[i]);
      expect(ds.label(i)).toBe(bulk.labels[i]);
      expectSame(out.subarray(5), bulk.images.subarray(i * sz, (i + 1) * sz), `sample ${i}`);
    }
    expect([ds.count, ds.channels, ds.height, ds.width, ds.numClasses]).toEqual([25, 3, 32, 32, 10]);
    expect(ds.classNames).toEqual(SHAPE_CLASSES);
  });

  it('the test split draws samples from 2^31 on, disjoint from train; size and seed change the images', () => {
    const test = builtinDataset({ split: 'test', count: 3, seed: 2, size: 16 });
    const a = new Float32Array(3 * 16 * 16);
    const label = test.get(1, a, 0);
    const ref = makeShapes(1, 2, BUILTIN_TEST_OFFSET + 1, 16);
    expectSame(a, ref.images, 'test sample 1');
    expect(label).toBe(ref.labels[0]);
    const b = new Float32Array(3 * 16 * 16);
    builtinDataset({ count: 3, seed: 2, size: 16 }).get(1, b, 0);
    expect(Array.from(a)).not.toEqual(Array.from(b));
  });

  it('rejects an index outside [0, count) with the dataset name', () => {
    const ds = builtinDataset({ count: 4 });
    expect(() => ds.get(4, new Float32Array(3072), 0)).toThrow(/builtin\(train, seed 0\): sample index 4 out of range \[0, 4\)/);
    expect(() => ds.label(-1)).toThrow(/out of range/);
  });
});
