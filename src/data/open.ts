// openDataset: one entry point from a spec's `data` field to an ImageDataset. A name picks a
// known source ('builtin', 'fashion-mnist', 'cifar10'); anything else is a folder whose contents
// say what it is: CIFAR-10 .bin batches, MNIST-layout IDX files, or class sub-folders of PNGs.
// `size` resizes sources that have a native size (transforms.ts, 'auto' mode); Fashion-MNIST is
// padded with −1 up to `size` when it is at least 28.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ImageDataset } from './dataset.ts';
import { builtinDataset } from './builtin.ts';
import { CIFAR10_HOW_TO_GET, CIFAR10_TEST_FILES, CIFAR10_TRAIN_FILES, cifar10Dataset } from './cifar10.ts';
import { idxDataset } from './fashionMnist.ts';
import { FASHION_MNIST_DIR } from './idx.ts';
import { isClassFolder, PNG_FOLDER_LAYOUT, pngFolderDataset } from './pngFolder.ts';
import { resizedDataset } from './resized.ts';
import type { ResizeMode } from './transforms.ts';

export const DEFAULT_CIFAR10_DIR = 'data/cifar-10-batches-bin';

export interface OpenOptions {
  split?: 'train' | 'test';
  /** Output side in pixels; default: the source's own (32 for builtin, PNG folders, Fashion-MNIST's canvas). */
  size?: number;
  resize?: ResizeMode;
  /** Folder for 'fashion-mnist' / 'cifar10' (defaults: /usr/share/datasets/fashion-mnist, ./data/cifar-10-batches-bin). */
  root?: string;
  /** builtin: sample count and seed. */
  count?: number;
  seed?: number;
  /** PNG folder: channels (default from the images) and decode cache. */
  channels?: 1 | 3;
  cache?: boolean;
}

type Kind = 'cifar10' | 'idx' | 'png';

const has = (dir: string, names: string[]): boolean => names.some((n) => existsSync(path.join(dir, n)));
const IDX_FILES = ['train', 't10k'].flatMap((s) => [`${s}-images-idx3-ubyte`, `${s}-images-idx3-ubyte.gz`]);

/** What kind of dataset folder `dir` is, and the folder to read (CIFAR's tarball nests one level). */
export function detectFolder(dir: string): { kind: Kind; dir: string } {
  if (!existsSync(dir)) {
    throw new Error(`dataset ${dir} not found: give 'builtin', 'fashion-mnist', 'cifar10', or a folder of CIFAR-10 .bin batches, IDX files or class sub-folders of PNGs`);
  }
  if (!statSync(dir).isDirectory()) throw new Error(`dataset ${dir} is a file; pass the folder that holds it`);
  if (has(dir, [...CIFAR10_TRAIN_FILES, ...CIFAR10_TEST_FILES])) return { kind: 'cifar10', dir };
  const nested = path.join(dir, 'cifar-10-batches-bin');
  if (existsSync(nested) && has(nested, [...CIFAR10_TRAIN_FILES, ...CIFAR10_TEST_FILES])) return { kind: 'cifar10', dir: nested };
  if (has(dir, IDX_FILES)) return { kind: 'idx', dir };
  if (isClassFolder(dir) || isClassFolder(path.join(dir, 'train'))) return { kind: 'png', dir };
  const seen = readdirSync(dir).slice(0, 8).join(', ') || 'nothing';
  throw new Error(`dataset folder ${dir} holds ${seen}; not a dataset. Expected one of: CIFAR-10 binary batches ` +
    `(data_batch_1..5.bin, test_batch.bin: ${CIFAR10_HOW_TO_GET}); IDX files (train-images-idx3-ubyte[.gz], ` +
    `train-labels-idx1-ubyte[.gz], t10k-...: apt-get install dataset-fashion-mnist); PNGs, ${PNG_FOLDER_LAYOUT}`);
}

function withSize(ds: ImageDataset, o: OpenOptions): ImageDataset {
  return o.size === undefined ? ds : resizedDataset(ds, o.size, o.size, o.resize ?? 'auto');
}

function openIdx(dir: string, o: OpenOptions, fashion: boolean): ImageDataset {
  const canvas = o.size !== undefined && o.size >= 28 ? o.size : 32;
  const digits = Array.from({ length: 10 }, (_, k) => String(k));
  const ds = idxDataset({
    dir, split: o.split, size: canvas,
    ...(fashion ? {} : { classNames: digits, name: `idx(${dir}, ${o.split ?? 'train'})` }),
  });
  return withSize(ds, o);
}

/** Channels and classes of the named datasets, known without opening them (`diffactor simulate`). */
export const NAMED_DATASET_SHAPES: Readonly<Record<string, { channels: number; classes: number }>> = {
  builtin: { channels: 3, classes: 10 },
  'fashion-mnist': { channels: 1, classes: 10 },
  cifar10: { channels: 3, classes: 10 },
};

export function openDataset(spec: 'builtin' | 'fashion-mnist' | 'cifar10' | (string & {}), o: OpenOptions = {}): ImageDataset {
  switch (spec) {
    case 'builtin':
      return builtinDataset({ split: o.split, count: o.count, seed: o.seed, size: o.size });
    case 'fashion-mnist':
      return openIdx(o.root ?? FASHION_MNIST_DIR, o, true);
    case 'cifar10': {
      const dir = o.root ?? DEFAULT_CIFAR10_DIR;
      if (!existsSync(dir)) throw new Error(`CIFAR-10 folder ${dir} not found: ${CIFAR10_HOW_TO_GET} (or put it at ${DEFAULT_CIFAR10_DIR})`);
      return withSize(cifar10Dataset({ dir: detectFolder(dir).dir, split: o.split }), o);
    }
  }
  const { kind, dir } = detectFolder(spec);
  if (kind === 'cifar10') return withSize(cifar10Dataset({ dir, split: o.split }), o);
  // An IDX folder is Fashion-MNIST when its name says so; otherwise (MNIST, ...) classes are digits.
  if (kind === 'idx') return openIdx(dir, o, /fashion/i.test(path.basename(path.resolve(dir))));
  return pngFolderDataset({ dir, split: o.split, size: o.size, channels: o.channels, resize: o.resize, cache: o.cache });
}
