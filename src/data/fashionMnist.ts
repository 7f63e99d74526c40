// Fashion-MNIST (or any MNIST-layout IDX folder) as an ImageDataset: 28×28 grey, centred on a
// canvas padded with the background value −1 (default 32×32, the patch-friendly size). Files are
// read once (idx.ts) and kept as bytes; get() converts one sample. Missing files get an error
// saying how to install them (idx.ts).
import { checkIndex, byteToSigned, type ImageDataset } from './dataset.ts';
import { FASHION_MNIST_DIR, readFashionMnist } from './idx.ts';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
] as const;

export interface IdxDatasetOptions {
  dir?: string;
  split?: 'train' | 'test';
  /** Canvas side (≥ the image side); the border is −1. Default 32. */
  size?: number;
  /** Default: Fashion-MNIST's names; pass e.g. digits for MNIST. */
  classNames?: readonly string[];
  name?: string;
}

export function idxDataset(o: IdxDatasetOptions = {}): ImageDataset {
  const dir = o.dir ?? FASHION_MNIST_DIR, split = o.split ?? 'train';
  const raw = readFashionMnist(split === 'train' ? 'train' : 't10k', dir);
  const { height: h, width: w } = raw;
  const size = o.size ?? 32;
  if (size < h || size < w) throw new Error(`${dir}: canvas size ${size} is smaller than the ${h}×${w} images`);
  const classNames = o.classNames ?? FASHION_MNIST_CLASSES;
  let maxLabel = 0;
  for (let i = 0; i < raw.count; i++) maxLabel = Math.max(maxLabel, raw.labels[i]);
  if (maxLabel >= classNames.length) {
    throw new Error(`${dir}: labels go up to ${maxLabel} but only ${classNames.length} class names are known`);
  }
  const top = Math.floor((size - h) / 2), left = Math.floor((size - w) / 2);
  const ds: ImageDataset = {
    name: o.name ?? `fashion-mnist(${split})`,
    count: raw.count,
    channels: 1,
    height: size,
    width: size,
    numClasses: classNames.length,
    classNames,
    get(i, out, offset) {
      checkIndex(ds, i);
      out.fill(-1, offset, offset + size * size);
      const src = i * h * w;
      for (let y = 0; y < h; y++) {
        const d = offset + (top + y) * size + left;
        for (let x = 0; x < w; x++) out[d + x] = byteToSigned(raw.images[src + y * w + x]);
      }
      return raw.labels[i];
    },
    label(i) {
      checkIndex(ds, i);
      return raw.labels[i];
    },
  };
  return ds;
}

export const fashionMnistDataset = (o: Omit<IdxDatasetOptions, 'classNames' | 'name'> = {}): ImageDataset => idxDataset(o);
