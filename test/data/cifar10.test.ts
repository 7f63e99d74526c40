import { describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cifar10Dataset, CIFAR10_CLASSES } from '../../src/data/cifar10.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { cifarBytes, expectSame, randomBytes, tempDir } from './files.ts';

/** A CIFAR-10 folder with `per` records in each training batch and 3 test records. */
function writeCifar(dir: string, per: number, rng: Rng): { labels: number[][]; pixels: Uint8Array[] } {
  const labels: number[][] = [], pixels: Uint8Array[] = [];
  for (const f of ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin']) {
    const n = f === 'test_batch.bin' ? 3 : per;
    const l = Array.from(rng.randintArray(0, 10, n));
    const p = randomBytes(rng, n * 3072);
    writeFileSync(path.join(dir, f), cifarBytes(l, p));
    labels.push(l); pixels.push(p);
  }
  return { labels, pixels };
}

describe('CIFAR-10 binary batches', () => {
  const rng = new Rng(5);

  it('round-trips every pixel and label exactly, CHW, across batch boundaries', () => {
    const dir = tempDir('cifar');
    const { labels, pixels } = writeCifar(dir, 2, rng);
    const train = cifar10Dataset({ dir });
    expect([train.count, train.channels, train.height, train.width, train.numClasses]).toEqual([10, 3, 32, 32, 10]);
    expect(train.classNames).toEqual(CIFAR10_CLASSES);
    const out = new Float32Array(3072);
    for (let i = 0; i < 10; i++) {
      const b = Math.floor(i / 2), r = i % 2;
      expect(train.get(i, out, 0)).toBe(labels[b][r]);
      expect(train.label(i)).toBe(labels[b][r]);
      const bytes = pixels[b].subarray(r * 3072, (r + 1) * 3072);
      expectSame(Array.from(out, (v) => Math.round((v + 1) * 127.5)), bytes, `train ${i}`);
      expectSame(out, Float32Array.from(bytes, (v) => v / 127.5 - 1), `train ${i} floats`);
    }
    // channel 1 (green), row 2, column 5 of record 0 of batch 3 = byte 1 + 1024 + 2·32 + 5 of that record
    train.get(4, out, 0);
    expect(Math.round((out[1024 + 2 * 32 + 5] + 1) * 127.5)).toBe(pixels[2][1024 + 69]);
    const test = cifar10Dataset({ dir, split: 'test' });
    expect(test.count).toBe(3);
    test.get(2, out, 0);
    expectSame(Array.from(out, (v) => Math.round((v + 1) * 127.5)), pixels[5].subarray(2 * 3072), 'test 2');
  });

  it('reads class names from batches.meta.txt when present', () => {
    const dir = tempDir('cifar-meta');
    writeCifar(dir, 1, rng);
    const names = Array.from({ length: 10 }, (_, k) => `c${k}`);
    writeFileSync(path.join(dir, 'batches.meta.txt'), names.join('\n') + '\n\n');
    expect(cifar10Dataset({ dir, split: 'test' }).classNames).toEqual(names);
  });

  it('names the missing, truncated or mislabelled file and says how to get the binary version', () => {
    const dir = tempDir('cifar-bad');
    writeCifar(dir, 1, rng);
    rmSync(path.join(dir, 'data_batch_3.bin'));
    expect(() => cifar10Dataset({ dir })).toThrow(new RegExp(`CIFAR-10 file ${path.join(dir, 'data_batch_3.bin')} not found: .*binary version.*https://www.cs.toronto.edu/~kriz/cifar.html`));
    writeFileSync(path.join(dir, 'test_batch.bin'), Buffer.alloc(3073 + 100));
    expect(() => cifar10Dataset({ dir, split: 'test' })).toThrow(/test_batch.bin: 3173 bytes is not a whole number of 3073-byte records/);
    const bad = cifarBytes([1, 12], new Uint8Array(2 * 3072));
    writeFileSync(path.join(dir, 'test_batch.bin'), bad);
    expect(() => cifar10Dataset({ dir, split: 'test' })).toThrow(/test_batch.bin: record 1 has label 12/);
  });
});
