import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { detectFolder, openDataset } from '../../src/data/open.ts';
import { resize } from '../../src/data/transforms.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { cifarBytes, expectClose, idxBytes, randomBytes, tempDir, writePng } from './files.ts';

const rng = new Rng(21);

function cifarFolder(dir: string): Uint8Array {
  mkdirSync(dir, { recursive: true });
  const px = randomBytes(rng, 3072);
  for (const f of ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin']) {
    writeFileSync(path.join(dir, f), cifarBytes([7], px));
  }
  return px;
}

function idxFolder(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxBytes([2, 28, 28], randomBytes(rng, 2 * 784)));
  writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxBytes([2], [5, 6]));
}

describe('openDataset', () => {
  it("'builtin' passes count, seed, size and split through", () => {
    const ds = openDataset('builtin', { count: 7, seed: 3, size: 16, split: 'test' });
    expect([ds.name, ds.count, ds.height]).toEqual(['builtin(test, seed 3)', 7, 16]);
  });

  it('detects a CIFAR-10 folder by its .bin batches, also one level up from cifar-10-batches-bin', () => {
    const root = tempDir('open-cifar');
    const inner = path.join(root, 'cifar-10-batches-bin');
    cifarFolder(inner);
    expect(detectFolder(inner)).toEqual({ kind: 'cifar10', dir: inner });
    expect(detectFolder(root)).toEqual({ kind: 'cifar10', dir: inner });
    const a = openDataset(root), b = openDataset('cifar10', { root: inner, split: 'test' });
    expect([a.name, a.count, b.name, b.count, a.label(0)]).toEqual(['cifar10(train)', 5, 'cifar10(test)', 1, 7]);
  });

  it('resizes a native-size source when size is given (area when shrinking)', () => {
    const dir = tempDir('open-cifar-small');
    const px = cifarFolder(dir);
    const ds = openDataset(dir, { size: 16 });
    expect([ds.height, ds.width, ds.channels]).toEqual([16, 16, 3]);
    const out = new Float32Array(3 * 256);
    expect(ds.get(0, out, 0)).toBe(7);
    const full = Float32Array.from(px, (v) => v / 127.5 - 1);
    expectClose(out, resize({ data: full, channels: 3, height: 32, width: 32 }, 16, 16, 'area').data, 0, 'resized CIFAR');
  });

  it('detects an IDX folder; class names are Fashion-MNIST\'s only when the folder says fashion', () => {
    const plain = path.join(tempDir('open-idx'), 'mnist');
    const fashion = path.join(tempDir('open-idx'), 'my-fashion-data');
    idxFolder(plain); idxFolder(fashion);
    expect(detectFolder(plain).kind).toBe('idx');
    const m = openDataset(plain), f = openDataset(fashion);
    expect([m.classNames[5], f.classNames[5]]).toEqual(['5', 'Sandal']);
    expect([m.height, openDataset(plain, { size: 28 }).height, openDataset(plain, { size: 14 }).height]).toEqual([32, 28, 14]);
  });

  it('detects a PNG class folder, flat or split into train/ and test/', () => {
    const flat = tempDir('open-png');
    writePng(path.join(flat, 'a', '1.png'), 4, 4, randomBytes(rng, 64), 6);
    expect(detectFolder(flat).kind).toBe('png');
    expect(openDataset(flat, { size: 4 }).count).toBe(1);
    const split = tempDir('open-png-split');
    writePng(path.join(split, 'train', 'a', '1.png'), 4, 4, randomBytes(rng, 64), 6);
    writePng(path.join(split, 'test', 'a', '1.png'), 4, 4, randomBytes(rng, 64), 6);
    expect(detectFolder(split).kind).toBe('png');
    expect(openDataset(split, { split: 'test', size: 4 }).name).toBe(`png-folder(${path.join(split, 'test')})`);
  });

  it('says what a folder holds and what it should hold, and how to get each dataset', () => {
    const dir = tempDir('open-bad');
    writeFileSync(path.join(dir, 'readme.txt'), 'x');
    expect(() => openDataset(dir)).toThrow(/holds readme.txt; not a dataset.*data_batch_1..5.bin.*cifar.html.*apt-get install dataset-fashion-mnist.*<dir>\/<class name>\/\*\.png/);
    expect(() => openDataset(path.join(dir, 'missing'))).toThrow(/missing not found: give 'builtin', 'fashion-mnist', 'cifar10', or a folder/);
    expect(() => openDataset(path.join(dir, 'readme.txt'))).toThrow(/readme.txt is a file; pass the folder/);
    expect(() => openDataset('cifar10', { root: path.join(dir, 'nope') })).toThrow(/CIFAR-10 folder .*nope not found: .*binary version.*cifar.html/);
    expect(() => openDataset('fashion-mnist', { root: dir })).toThrow(/train-images-idx3-ubyte\[\.gz\] not found: .*apt-get install dataset-fashion-mnist/);
  });
});
