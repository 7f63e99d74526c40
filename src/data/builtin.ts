// The built-in shapes set (shapes.ts) as an ImageDataset: samples are drawn lazily, one per
// get(), since sample i depends only on (seed, i). Any count is allowed. The test split draws
// from indices offset by 2^31, so train and test never share a sample for counts below that.
import { checkIndex, type ImageDataset } from './dataset.ts';
import { makeShapes, SHAPE_CLASSES } from './shapes.ts';

export const BUILTIN_TEST_OFFSET = 2 ** 31;

export interface BuiltinOptions {
  split?: 'train' | 'test';
  /** Number of samples (default 10 000 train, 2 000 test). */
  count?: number;
  seed?: number;
  /** Side length in pixels (default 32). */
  size?: number;
}

export function builtinDataset(o: BuiltinOptions = {}): ImageDataset {
  const split = o.split ?? 'train';
  const count = o.count ?? (split === 'train' ? 10_000 : 2_000);
  const seed = o.seed ?? 0, size = o.size ?? 32;
  if (!Number.isInteger(count) || count < 1 || count > BUILTIN_TEST_OFFSET) {
    throw new Error(`builtin dataset: count must be an integer in [1, 2^31], got ${count}`);
  }
  if (!Number.isInteger(size) || size < 4) throw new Error(`builtin dataset: size must be an integer ≥ 4, got ${size}`);
  const start = split === 'train' ? 0 : BUILTIN_TEST_OFFSET;
  const ds: ImageDataset = {
    name: `builtin(${split}, seed ${seed})`,
    count,
    channels: 3,
    height: size,
    width: size,
    numClasses: SHAPE_CLASSES.length,
    classNames: SHAPE_CLASSES,
    get(i, out, offset) {
      checkIndex(ds, i);
      const s = makeShapes(1, seed, start + i, size);
      out.set(s.images, offset);
      return s.labels[0];
    },
    label(i) {
      checkIndex(ds, i);
      return (start + i) % SHAPE_CLASSES.length; // makeShapes assigns class idx mod 10
    },
  };
  return ds;
}
