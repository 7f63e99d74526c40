import { describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { FASHION_MNIST_CLASSES, fashionMnistDataset, idxDataset } from '../../src/data/fashionMnist.ts';
import { FASHION_MNIST_DIR, readIdx } from '../../src/data/idx.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { expectSame, idxBytes, randomBytes, tempDir } from './files.ts';

/** Canvas of side s with a 28×28 image at (top, left), border −1, all in bytes→[-1, 1]. */
function padded(img: Uint8Array, s: number, top: number, left: number): Float32Array {
  const out = new Float32Array(s * s).fill(-1);
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) out[(top + y) * s + left + x] = img[y * 28 + x] / 127.5 - 1;
  return out;
}

describe('Fashion-MNIST from IDX files', () => {
  it('pads 28×28 to 32×32 with −1 and round-trips pixels and labels exactly (plain and gzipped files)', () => {
    const dir = tempDir('idx');
    const rng = new Rng(4);
    const train = randomBytes(rng, 3 * 784), test = randomBytes(rng, 2 * 784);
    writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(idxBytes([3, 28, 28], train)));
    writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxBytes([3], [9, 0, 4]));
    writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), idxBytes([2, 28, 28], test));
    writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(idxBytes([2], [1, 8])));
    const ds = fashionMnistDataset({ dir });
    expect([ds.count, ds.channels, ds.height, ds.width, ds.numClasses]).toEqual([3, 1, 32, 32, 10]);
    expect(ds.classNames).toEqual(FASHION_MNIST_CLASSES);
    const out = new Float32Array(1024 + 1);
    for (let i = 0; i < 3; i++) {
      expect(ds.get(i, out, 1)).toBe([9, 0, 4][i]);
      expectSame(out.subarray(1), padded(train.subarray(i * 784, (i + 1) * 784), 32, 2, 2), `train ${i}`);
    }
    const t = fashionMnistDataset({ dir, split: 'test', size: 29 });
    expect([t.count, t.height, t.label(1)]).toEqual([2, 29, 8]);
    const o29 = new Float32Array(29 * 29);
    t.get(1, o29, 0);
    expectSame(o29, padded(test.subarray(784), 29, 0, 0), 'test 1 on a 29 canvas (odd pixel bottom/right)');
    expect(() => fashionMnistDataset({ dir, size: 20 })).toThrow(/canvas size 20 is smaller than the 28×28 images/);
  });

  it('refuses labels beyond the class names, and names the missing file with the apt-get hint', () => {
    const dir = tempDir('idx-bad');
    writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxBytes([1, 28, 28], new Uint8Array(784)));
    writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxBytes([1], [3]));
    expect(() => idxDataset({ dir, classNames: ['a', 'b'] })).toThrow(/labels go up to 3 but only 2 class names/);
    expect(() => fashionMnistDataset({ dir, split: 'test' }))
      .toThrow(new RegExp(`${path.join(dir, 't10k-images-idx3-ubyte')}\\[\\.gz\\] not found: .*apt-get install dataset-fashion-mnist`));
  });

  const real = existsSync(path.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
  const realTitle = real ? `reads the real files in ${FASHION_MNIST_DIR}`
    : `reads the real files (skipped: ${FASHION_MNIST_DIR} not installed; apt-get install dataset-fashion-mnist)`;
  it.skipIf(!real)(realTitle, () => {
    const train = fashionMnistDataset(), test = fashionMnistDataset({ split: 'test' });
    expect([train.count, test.count]).toEqual([60_000, 10_000]);
    // Published facts: 6000 / 1000 images per class; the first training image is an ankle boot.
    for (const [ds, per] of [[train, 6000], [test, 1000]] as const) {
      const counts = new Array(10).fill(0);
      for (let i = 0; i < ds.count; i++) counts[ds.label(i)]++;
      expect(counts).toEqual(new Array(10).fill(per));
    }
    expect(train.classNames[train.label(0)]).toBe('Ankle boot');
    const raw = readIdx(path.join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz')).data;
    const out = new Float32Array(1024);
    for (const i of [0, 4321, 9999]) {
      test.get(i, out, 0);
      expectSame(out, padded(raw.subarray(i * 784, (i + 1) * 784), 32, 2, 2), `real test ${i}`);
    }
  });
});
