// The dataset contract every source implements (built-in shapes, Fashion-MNIST, CIFAR-10, a
// PNG folder): random access to one sample by index, already converted to float32 in [-1, 1],
// CHW. A loader or a data actor fetches any sample with no shared state. Not a loader: ordering,
// batching and augmentation live in loader.ts.

export interface ImageDataset {
  readonly name: string;
  readonly count: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly numClasses: number;
  readonly classNames: readonly string[];
  /** Write sample i, (C, H, W) in [-1, 1], into out[offset ..]; return its class index. */
  get(i: number, out: Float32Array, offset: number): number;
  /** The class of sample i without producing its pixels (class filters scan every sample). */
  label(i: number): number;
}

/** Values per sample: C·H·W. */
export function sampleSize(ds: ImageDataset): number {
  return ds.channels * ds.height * ds.width;
}

export function checkIndex(ds: { name: string; count: number }, i: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= ds.count) {
    throw new RangeError(`${ds.name}: sample index ${i} out of range [0, ${ds.count})`);
  }
}

/** The uint8 → [-1, 1] map used by every source: 0 → −1, 255 → +1. */
export function byteToSigned(v: number): number {
  return v / 127.5 - 1;
}
