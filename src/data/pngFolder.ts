// A folder of PNGs with one sub-folder per class, as an ImageDataset:
//   <dir>/<class>/*.png                       one split, or
//   <dir>/train/<class>/*.png, <dir>/test/<class>/*.png (or val/)   two splits.
// Class index = position of the folder name in sorted (code-unit) order, files sorted likewise,
// so the numbering matches Python's sorted() / torchvision's ImageFolder. Every image is
// centre-cropped to the target aspect ratio and resized (transforms.ts, 'auto' by default: area
// when shrinking, bilinear when enlarging). Grey images give 1 channel, colour 3 (grey is
// replicated when the set is colour; colour becomes ITU-R 601 luma, as PIL's convert('L'), when
// 1 channel is asked for). Alpha is dropped, as PIL's convert('RGB') does in the ADM/DiT/REPA
// loaders. Headers are checked at open; pixels are decoded on first get() and cached.
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { byteToSigned, checkIndex, type ImageDataset } from './dataset.ts';
import { cropResize, type ResizeMode } from './transforms.ts';

export const PNG_FOLDER_LAYOUT =
  'expected layout: <dir>/<class name>/*.png with one sub-folder per class (class index = sorted folder name order), ' +
  'or <dir>/train/<class name>/*.png and <dir>/test/<class name>/*.png';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export interface PngFolderOptions {
  dir: string;
  split?: 'train' | 'test';
  /** Output side, or [height, width]. Default 32. */
  size?: number | readonly [number, number];
  /** Default: 1 when every image is grey, else 3. */
  channels?: 1 | 3;
  resize?: ResizeMode;
  /** Keep decoded samples in memory (default true). */
  cache?: boolean;
}

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();
const visible = (dir: string): string[] => readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
const pngsIn = (dir: string): string[] => visible(dir).filter((n) => /\.png$/i.test(n) && !isDir(path.join(dir, n)));

/** True when `dir` has at least one class sub-folder holding a PNG. */
export function isClassFolder(dir: string): boolean {
  return isDir(dir) && visible(dir).some((n) => isDir(path.join(dir, n)) && pngsIn(path.join(dir, n)).length > 0);
}

/** The folder holding the class sub-folders of `split`. */
function splitDir(dir: string, split: 'train' | 'test'): string {
  if (!isDir(dir)) throw new Error(`PNG folder ${dir} not found or not a folder; ${PNG_FOLDER_LAYOUT}`);
  const train = path.join(dir, 'train');
  if (isClassFolder(train)) {
    if (split === 'train') return train;
    for (const name of ['test', 'val']) if (isClassFolder(path.join(dir, name))) return path.join(dir, name);
    throw new Error(`PNG folder ${dir} has train/ but no test/ or val/ with class sub-folders of PNGs; ${PNG_FOLDER_LAYOUT}`);
  }
  if (split === 'test') {
    throw new Error(`PNG folder ${dir} holds a single split (class folders directly under it), so it has no test split: pass the test folder itself, or use ${dir}/train/<class>/*.png and ${dir}/test/<class>/*.png`);
  }
  return dir;
}

interface Header { width: number; height: number; colour: boolean }

function readHeader(file: string): Header {
  const b = Buffer.alloc(26);
  const fd = openSync(file, 'r');
  let n: number;
  try { n = readSync(fd, b, 0, 26, 0); } finally { closeSync(fd); }
  if (n < 26 || SIGNATURE.some((v, i) => b[i] !== v) || b.toString('latin1', 12, 16) !== 'IHDR') {
    throw new Error(`${file}: not a PNG file (bad signature or IHDR header); ${PNG_FOLDER_LAYOUT}`);
  }
  const colourType = b[25];
  if (![0, 2, 3, 4, 6].includes(colourType)) throw new Error(`${file}: PNG colour type ${colourType} is invalid`);
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20), colour: colourType === 2 || colourType === 3 || colourType === 6 };
}

export function pngFolderDataset(o: PngFolderOptions): ImageDataset {
  const split = o.split ?? 'train';
  const root = splitDir(o.dir, split);
  const classNames = visible(root).filter((n) => isDir(path.join(root, n)));
  if (classNames.length === 0) throw new Error(`PNG folder ${root} has no class sub-folders; ${PNG_FOLDER_LAYOUT}`);
  const files: string[] = [], labels: number[] = [];
  let anyColour = false;
  classNames.forEach((cls, k) => {
    const d = path.join(root, cls);
    const pngs = pngsIn(d);
    if (pngs.length === 0) {
      const found = visible(d).slice(0, 5).join(', ');
      throw new Error(`PNG folder class ${d} has no .png files${found ? ` (found: ${found}${visible(d).length > 5 ? ', …' : ''})` : ''}; ${PNG_FOLDER_LAYOUT}`);
    }
    for (const f of pngs) {
      const file = path.join(d, f);
      if (readHeader(file).colour) anyColour = true;
      files.push(file); labels.push(k);
    }
  });
  const C = o.channels ?? (anyColour ? 3 : 1);
  const [H, W] = typeof o.size === 'number' ? [o.size, o.size] : o.size ?? [32, 32];
  const mode = o.resize ?? 'auto';
  const cache = (o.cache ?? true) ? new Map<number, Float32Array>() : null;

  const decode = (i: number): Float32Array => {
    const file = files[i];
    let png: { width: number; height: number; data: Buffer; color?: boolean };
    try {
      png = PNG.sync.read(readFileSync(file)) as typeof png;
    } catch (e) {
      throw new Error(`${file}: cannot decode PNG (${(e as Error).message}); ${PNG_FOLDER_LAYOUT}`);
    }
    const { width: w, height: h, data } = png;
    const colour = png.color !== false;
    const plane = new Float32Array(C * h * w); // (C, h, w)
    for (let p = 0; p < h * w; p++) {
      const r = data[4 * p], g = data[4 * p + 1], b = data[4 * p + 2];
      if (C === 3) {
        plane[p] = byteToSigned(r); plane[h * w + p] = byteToSigned(g); plane[2 * h * w + p] = byteToSigned(b);
      } else {
        plane[p] = byteToSigned(colour ? 0.299 * r + 0.587 * g + 0.114 * b : r);
      }
    }
    return cropResize({ data: plane, channels: C, height: h, width: w }, H, W, mode).data;
  };

  const ds: ImageDataset = {
    name: `png-folder(${root})`,
    count: files.length,
    channels: C,
    height: H,
    width: W,
    numClasses: classNames.length,
    classNames,
    get(i, out, offset) {
      checkIndex(ds, i);
      let px = cache?.get(i);
      if (!px) { px = decode(i); cache?.set(i, px); }
      out.set(px, offset);
      return labels[i];
    },
    label(i) {
      checkIndex(ds, i);
      return labels[i];
    },
  };
  return ds;
}
