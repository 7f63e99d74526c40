// IDX files (the MNIST / Fashion-MNIST container), gzipped or not. Reads unsigned-byte arrays;
// a missing or malformed file gets an error that names it and says how to get the data.
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
const HOW_TO_GET = `install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), which puts the IDX files under ${FASHION_MNIST_DIR}`;

export interface IdxArray { dims: number[]; data: Uint8Array }

export function readIdx(file: string): IdxArray {
  let bytes: Buffer = readFileSync(file);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      // zlib's own message ("unexpected end of file") names no file.
      throw new Error(`${file}: cannot decompress (gzip: ${(e as Error).message}); the file is damaged or was cut short — ${HOW_TO_GET}`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new Error(`${file}: not an IDX file (magic must start with two zero bytes)`);
  }
  if (bytes[2] !== 0x08) throw new Error(`${file}: IDX type 0x${bytes[2].toString(16)} unsupported (only unsigned byte, 0x08)`);
  const nd = bytes[3];
  if (bytes.length < 4 + 4 * nd) throw new Error(`${file}: truncated IDX header (${nd} dims declared)`);
  const dims = Array.from({ length: nd }, (_, i) => bytes.readUInt32BE(4 + 4 * i));
  const n = dims.reduce((a, b) => a * b, 1);
  const off = 4 + 4 * nd;
  if (bytes.length - off !== n) {
    throw new Error(`${file}: IDX payload has ${bytes.length - off} bytes, header dims [${dims.join(', ')}] need ${n}`);
  }
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + off, n) };
}

function findFile(dir: string, stem: string): string {
  for (const name of [stem, `${stem}.gz`]) {
    const p = path.join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`Fashion-MNIST file ${path.join(dir, stem)}[.gz] not found: ${HOW_TO_GET}, or pass the folder that holds it`);
}

export interface LabelledImages { images: Uint8Array; labels: Uint8Array; count: number; height: number; width: number }

/** Fashion-MNIST split ('train' 60k, 't10k' 10k) as raw bytes. */
export function readFashionMnist(split: 'train' | 't10k', dir = FASHION_MNIST_DIR): LabelledImages {
  const imgFile = findFile(dir, `${split}-images-idx3-ubyte`);
  const lblFile = findFile(dir, `${split}-labels-idx1-ubyte`);
  const img = readIdx(imgFile), lbl = readIdx(lblFile);
  if (img.dims.length !== 3) throw new Error(`${imgFile}: expected 3 dims (count, rows, cols), got [${img.dims.join(', ')}]`);
  if (lbl.dims.length !== 1 || lbl.dims[0] !== img.dims[0]) {
    throw new Error(`${lblFile}: expected ${img.dims[0]} labels to match ${imgFile}, got dims [${lbl.dims.join(', ')}]`);
  }
  return { images: img.data, labels: lbl.data, count: img.dims[0], height: img.dims[1], width: img.dims[2] };
}
