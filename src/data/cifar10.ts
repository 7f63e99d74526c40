// CIFAR-10, binary version, as an ImageDataset. Each batch file is a run of 3073-byte records:
// one label byte, then 1024 red, 1024 green, 1024 blue bytes (each plane row-major 32×32), which
// is already CHW. Train = data_batch_1..5.bin, test = test_batch.bin; class names come from
// batches.meta.txt when present. Files are read whole at open (≈150 MB for train) and validated
// there, so a bad file fails before training starts, with its name and how to get a good one.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { byteToSigned, checkIndex, type ImageDataset } from './dataset.ts';

export const CIFAR10_CLASSES = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
] as const;
export const CIFAR10_TRAIN_FILES = [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`);
export const CIFAR10_TEST_FILES = ['test_batch.bin'];
export const CIFAR10_HOW_TO_GET =
  'download the CIFAR-10 binary version ("CIFAR-10 binary version (suitable for C programs)", cifar-10-binary.tar.gz) ' +
  'from its authors\' page https://www.cs.toronto.edu/~kriz/cifar.html, extract it, and pass the cifar-10-batches-bin folder';
const REC = 3073, PIX = 3072;

export interface Cifar10Options { dir: string; split?: 'train' | 'test' }

function readBatch(file: string): Buffer {
  if (!existsSync(file)) throw new Error(`CIFAR-10 file ${file} not found: ${CIFAR10_HOW_TO_GET}`);
  const b = readFileSync(file);
  if (b.length === 0 || b.length % REC !== 0) {
    throw new Error(`${file}: ${b.length} bytes is not a whole number of ${REC}-byte records (1 label byte + ${PIX} pixel bytes); ` +
      `is it the binary version? (the python and matlab versions are not): ${CIFAR10_HOW_TO_GET}`);
  }
  for (let r = 0; r < b.length / REC; r++) {
    if (b[r * REC] > 9) throw new Error(`${file}: record ${r} has label ${b[r * REC]}, CIFAR-10 labels are 0..9 (is this CIFAR-100?)`);
  }
  return b;
}

function readClassNames(dir: string): readonly string[] {
  const f = path.join(dir, 'batches.meta.txt');
  if (!existsSync(f)) return CIFAR10_CLASSES;
  const names = readFileSync(f, 'utf8').split('\n').map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length !== 10) throw new Error(`${f}: expected 10 class names, one per line, got ${names.length}`);
  return names;
}

export function cifar10Dataset(o: Cifar10Options): ImageDataset {
  const split = o.split ?? 'train';
  const files = (split === 'train' ? CIFAR10_TRAIN_FILES : CIFAR10_TEST_FILES).map((f) => path.join(o.dir, f));
  const batches = files.map(readBatch);
  const starts = [0];
  for (const b of batches) starts.push(starts[starts.length - 1] + b.length / REC);
  const classNames = readClassNames(o.dir);
  const locate = (i: number): [Buffer, number] => {
    let k = 0;
    while (i >= starts[k + 1]) k++;
    return [batches[k], (i - starts[k]) * REC];
  };
  const ds: ImageDataset = {
    name: `cifar10(${split})`,
    count: starts[starts.length - 1],
    channels: 3,
    height: 32,
    width: 32,
    numClasses: 10,
    classNames,
    get(i, out, offset) {
      checkIndex(ds, i);
      const [b, at] = locate(i);
      for (let k = 0; k < PIX; k++) out[offset + k] = byteToSigned(b[at + 1 + k]);
      return b[at];
    },
    label(i) {
      checkIndex(ds, i);
      const [b, at] = locate(i);
      return b[at];
    },
  };
  return ds;
}
