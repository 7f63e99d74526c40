// Test helpers: write small dataset files (IDX, CIFAR-10 batches, PNGs) into temp folders, with
// seeded random bytes, so each dataset test checks the reader against the bytes it wrote.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { Rng } from '../../src/tensor/rng.ts';

export const tempDir = (tag: string): string => mkdtempSync(path.join(tmpdir(), `diffactor-${tag}-`));

export function randomBytes(rng: Rng, n: number): Uint8Array {
  const w = rng.uint32(new Uint32Array(n));
  return Uint8Array.from(w, (v) => v & 255);
}

export function idxBytes(dims: number[], payload: ArrayLike<number>): Buffer {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h[2] = 0x08; h[3] = dims.length;
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([h, Buffer.from(Uint8Array.from(payload))]);
}

/** CIFAR records: label byte + 3072 pixel bytes each. */
export function cifarBytes(labels: number[], pixels: Uint8Array): Buffer {
  const out = Buffer.alloc(labels.length * 3073);
  labels.forEach((l, r) => {
    out[r * 3073] = l;
    out.set(pixels.subarray(r * 3072, (r + 1) * 3072), r * 3073 + 1);
  });
  return out;
}

/** One PNG from RGBA bytes (h·w·4), written with the given PNG colour type (0 grey, 2 RGB, 4 grey+alpha, 6 RGBA). */
export function writePng(file: string, w: number, h: number, rgba: Uint8Array, colorType: 0 | 2 | 4 | 6): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const buf = PNG.sync.write({ width: w, height: h, data: Buffer.from(rgba) } as PNG, { colorType, inputColorType: 6, inputHasAlpha: true });
  writeFileSync(file, buf);
}

/** A 16-bit grey PNG from 16-bit values. */
export function writePng16Grey(file: string, w: number, h: number, grey16: Uint16Array): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const rgba = new Uint16Array(w * h * 4);
  for (let p = 0; p < w * h; p++) { rgba.fill(grey16[p], 4 * p, 4 * p + 3); rgba[4 * p + 3] = 65535; }
  const data = Buffer.from(rgba.buffer);
  writeFileSync(file, PNG.sync.write({ width: w, height: h, data } as PNG, { colorType: 0, inputColorType: 6, bitDepth: 16, inputHasAlpha: true }));
}

/** Max |a - b| and the first mismatching index, for failure messages. */
export function diff(a: ArrayLike<number>, b: ArrayLike<number>): string {
  let max = 0, first = -1;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) max = Infinity; else if (d > max) max = d;
    if (first < 0 && a[i] !== b[i]) first = i;
  }
  const head = (x: ArrayLike<number>) => Array.from(x).slice(Math.max(first, 0), Math.max(first, 0) + 4).map((v) => +v.toPrecision(6)).join(', ');
  return `lengths ${a.length}/${b.length}, max |diff| ${max}, first mismatch at ${first}: [${head(a)}] vs [${head(b)}]`;
}

/** Assert equality of arrays with a message that shows where they differ. */
export function expectSame(a: ArrayLike<number>, b: ArrayLike<number>, what = ''): void {
  let ok = a.length === b.length;
  for (let i = 0; ok && i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) ok = false;
  if (!ok) throw new Error(`${what} arrays differ: ${diff(a, b)}`);
}

export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what = ''): void {
  let ok = a.length === b.length;
  for (let i = 0; ok && i < a.length; i++) if (!(Math.abs(a[i] - b[i]) <= tol)) ok = false;
  if (!ok) throw new Error(`${what} arrays differ beyond ${tol}: ${diff(a, b)}`);
}
