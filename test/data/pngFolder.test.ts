import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import path from 'node:path';
import { pngFolderDataset } from '../../src/data/pngFolder.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { expectClose, expectSame, randomBytes, tempDir, writePng, writePng16Grey } from './files.ts';

const toBytes = (x: Float32Array): number[] => Array.from(x, (v) => Math.round((v + 1) * 127.5));
const opaque = (rgba: Uint8Array): Uint8Array => { for (let p = 3; p < rgba.length; p += 4) rgba[p] = 255; return rgba; };
/** Channel c of RGBA bytes as a plane. */
const chan = (rgba: Uint8Array, c: number): number[] => Array.from({ length: rgba.length / 4 }, (_, p) => rgba[4 * p + c]);

describe('PNG folder', () => {
  const rng = new Rng(9);

  it('numbers classes by sorted folder name and round-trips RGB, grey and RGBA pixels exactly', () => {
    const dir = tempDir('png');
    // code-unit order: 'Zebra' < 'apple' < 'bird'
    const rgb = opaque(randomBytes(rng, 8 * 8 * 4));
    const rgba = randomBytes(rng, 8 * 8 * 4);
    const grey = opaque(randomBytes(rng, 8 * 8 * 4));
    for (let p = 0; p < 64; p++) grey.fill(grey[4 * p], 4 * p, 4 * p + 3);
    writePng(path.join(dir, 'bird', 'b.png'), 8, 8, rgb, 2);
    writePng(path.join(dir, 'bird', 'a.png'), 8, 8, rgba, 6);
    writePng(path.join(dir, 'apple', 'x.png'), 8, 8, grey, 0);
    writePng(path.join(dir, 'Zebra', 'y.png'), 8, 8, rgb, 6);
    writeFileSync(path.join(dir, 'bird', 'notes.txt'), 'ignored');
    const ds = pngFolderDataset({ dir, size: 8 });
    expect(ds.classNames).toEqual(['Zebra', 'apple', 'bird']);
    expect([ds.count, ds.channels, ds.height, ds.width, ds.numClasses]).toEqual([4, 3, 8, 8, 3]);
    expect([0, 1, 2, 3].map((i) => ds.label(i))).toEqual([0, 1, 2, 2]);
    const out = new Float32Array(3 * 64);
    const expectRgb = (i: number, src: Uint8Array, what: string) => {
      ds.get(i, out, 0);
      expectSame(toBytes(out), [...chan(src, 0), ...chan(src, 1), ...chan(src, 2)], what);
      expectSame(out, Float32Array.from([...chan(src, 0), ...chan(src, 1), ...chan(src, 2)], (v) => v / 127.5 - 1), `${what} floats`);
    };
    expectRgb(0, rgb, 'Zebra/y.png (RGBA file, opaque)');
    expectRgb(1, grey, 'apple/x.png (grey replicated to 3 channels)');
    expectRgb(2, rgba, 'bird/a.png (alpha dropped)');
    expectRgb(3, rgb, 'bird/b.png (RGB)');
    expect(ds.get(3, out, 0)).toBe(2);
  });

  it('gives 1 channel for an all-grey set (8- and 16-bit), and luma when 1 channel is asked of colour', () => {
    const dir = tempDir('png-grey');
    const g8 = opaque(randomBytes(rng, 4 * 4 * 4));
    for (let p = 0; p < 16; p++) g8.fill(g8[4 * p], 4 * p, 4 * p + 3);
    const g16 = Uint16Array.from({ length: 16 }, (_, k) => k * 4097 + 3);
    writePng(path.join(dir, 'a', '0.png'), 4, 4, g8, 0);
    writePng16Grey(path.join(dir, 'b', '0.png'), 4, 4, g16);
    const ds = pngFolderDataset({ dir, size: 4 });
    expect(ds.channels).toBe(1);
    const out = new Float32Array(16);
    ds.get(0, out, 0);
    expectSame(toBytes(out), chan(g8, 0), '8-bit grey');
    ds.get(1, out, 0);
    expectSame(toBytes(out), Array.from(g16, (v) => Math.floor((v * 255) / 65535 + 0.5)), '16-bit grey rescaled');

    const cdir = tempDir('png-luma');
    const c = opaque(randomBytes(rng, 4 * 4 * 4));
    writePng(path.join(cdir, 'k', '0.png'), 4, 4, c, 2);
    const mono = pngFolderDataset({ dir: cdir, size: 4, channels: 1 });
    mono.get(0, out, 0);
    const luma = Array.from({ length: 16 }, (_, p) => (0.299 * c[4 * p] + 0.587 * c[4 * p + 1] + 0.114 * c[4 * p + 2]) / 127.5 - 1);
    expectClose(out, luma, 1e-6, 'luma');
  });

  it('centre-crops to square and resizes with area averaging (hand reference on the bytes)', () => {
    const dir = tempDir('png-resize');
    const W = 12, H = 8; // landscape: keep columns 2..9, then 8 → 4 by 2×2 means
    const src = opaque(randomBytes(rng, W * H * 4));
    writePng(path.join(dir, 'only', 'wide.png'), W, H, src, 2);
    const ds = pngFolderDataset({ dir, size: 4, resize: 'area' });
    const out = new Float32Array(3 * 16);
    ds.get(0, out, 0);
    const want: number[] = [];
    for (let c = 0; c < 3; c++) for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) {
      let s = 0;
      for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]]) s += src[4 * ((2 * y + dy) * W + 2 + 2 * x + dx) + c];
      want.push(s / 4 / 127.5 - 1);
    }
    expectClose(out, want, 2e-6, 'crop+area');
    const rect = pngFolderDataset({ dir, size: [2, 3], resize: 'area' });
    expect([rect.height, rect.width]).toEqual([2, 3]);
  });

  it('reads train/ and test/ splits, and refuses a test split from a single-split folder', () => {
    const dir = tempDir('png-split');
    const px = opaque(randomBytes(rng, 4 * 4 * 4));
    writePng(path.join(dir, 'train', 'a', '0.png'), 4, 4, px, 2);
    writePng(path.join(dir, 'train', 'b', '0.png'), 4, 4, px, 2);
    writePng(path.join(dir, 'val', 'a', '0.png'), 4, 4, px, 2);
    expect(pngFolderDataset({ dir, size: 4 }).count).toBe(2);
    expect(pngFolderDataset({ dir, split: 'test', size: 4 }).count).toBe(1);
    const single = path.join(dir, 'train');
    expect(() => pngFolderDataset({ dir: single, split: 'test' })).toThrow(/holds a single split .* no test split/);
  });

  it('names the folder or file and states the layout when something is wrong', () => {
    const dir = tempDir('png-bad');
    expect(() => pngFolderDataset({ dir: path.join(dir, 'nope') })).toThrow(/nope not found .*expected layout: <dir>\/<class name>\/\*\.png/);
    mkdirSync(path.join(dir, 'cat'));
    mkdirSync(path.join(dir, 'dog'));
    writeFileSync(path.join(dir, 'dog', 'pic.jpg'), 'x');
    writePng(path.join(dir, 'cat', 'ok.png'), 2, 2, opaque(randomBytes(rng, 16)), 2);
    expect(() => pngFolderDataset({ dir })).toThrow(new RegExp(`class ${path.join(dir, 'dog')} has no .png files \\(found: pic.jpg\\)`));
    writeFileSync(path.join(dir, 'dog', 'fake.png'), 'not a png at all, just text');
    expect(() => pngFolderDataset({ dir })).toThrow(/fake.png: not a PNG file/);
    // a valid header followed by garbage fails at decode, naming the file
    const good = PNG.sync.write({ width: 2, height: 2, data: Buffer.alloc(16, 255) } as PNG, { colorType: 2 });
    writeFileSync(path.join(dir, 'dog', 'fake.png'), Buffer.concat([good.subarray(0, 33), Buffer.from('garbage')]));
    const ds = pngFolderDataset({ dir });
    expect(() => ds.get(1, new Float32Array(3 * 32 * 32), 0)).toThrow(/fake.png: cannot decode PNG/);
  });
});
