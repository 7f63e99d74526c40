import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readFashionMnist, readIdx } from '../../src/data/idx.ts';

function idx(dims: number[], payload: number[]): Buffer {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h[2] = 0x08; h[3] = dims.length;
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([h, Buffer.from(payload)]);
}

describe('IDX reader', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'idx-'));

  it('a truncated gzip names the file (zlib alone says only "unexpected end of file")', () => {
    const gz = gzipSync(idx([4, 3], Array.from({ length: 12 }, (_, i) => i)));
    const f = path.join(dir, 'cut.gz');
    writeFileSync(f, gz.subarray(0, gz.length - 6));
    expect(() => readIdx(f)).toThrow(new RegExp(`${f.replace(/[.]/g, '\\.')}: cannot decompress \\(gzip: .*\\); the file is damaged or was cut short`));
  });

  it('reads plain and gzipped files alike', () => {
    const raw = idx([2, 2, 3], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]);
    writeFileSync(path.join(dir, 'a'), raw);
    writeFileSync(path.join(dir, 'b.gz'), gzipSync(raw));
    for (const f of ['a', 'b.gz']) {
      const r = readIdx(path.join(dir, f));
      expect(r.dims).toEqual([2, 2, 3]);
      expect(Array.from(r.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]);
    }
  });

  it('names the file and the problem when malformed', () => {
    const f = path.join(dir, 'bad');
    writeFileSync(f, idx([2, 3], [1, 2, 3]));
    expect(() => readIdx(f)).toThrow(/bad: IDX payload has 3 bytes, header dims \[2, 3\] need 6/);
    writeFileSync(f, Buffer.from([1, 2, 3, 4]));
    expect(() => readIdx(f)).toThrow(/bad: not an IDX file/);
  });

  it('says how to get Fashion-MNIST when it is missing', () => {
    expect(() => readFashionMnist('train', dir)).toThrow(/apt-get install dataset-fashion-mnist/);
  });

  it('pairs images with labels from one folder', () => {
    writeFileSync(path.join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(idx([2, 1, 2], [9, 8, 7, 6])));
    writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), idx([2], [3, 1]));
    const d = readFashionMnist('t10k', dir);
    expect([d.count, d.height, d.width, ...d.labels]).toEqual([2, 1, 2, 3, 1]);
  });
});
