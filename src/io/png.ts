// Image grids as PNG (pngjs): N images (N, C, H, W) in [-1, 1], C = 1 or 3, laid out in rows.
import { PNG } from 'pngjs';
import { writeFileAtomic } from './atomic.ts';

export function gridPng(images: Float32Array, n: number, c: number, h: number, w: number, cols: number, pad = 1, zoom = 1): Buffer {
  if (c !== 1 && c !== 3) throw new Error(`gridPng: channels must be 1 or 3, got ${c}`);
  if (images.length < n * c * h * w) throw new Error(`gridPng: ${images.length} values cannot hold ${n}×${c}×${h}×${w}`);
  const rows = Math.ceil(n / cols);
  const W = (cols * (w + pad) + pad) * zoom, H = (rows * (h + pad) + pad) * zoom;
  const png = new PNG({ width: W, height: H });
  png.data.fill(255);
  for (let i = 0; i < n; i++) {
    const r0 = Math.floor(i / cols), c0 = i % cols;
    for (let y = 0; y < h * zoom; y++) {
      for (let x = 0; x < w * zoom; x++) {
        const py = (r0 * (h + pad) + pad) * zoom + y, px = (c0 * (w + pad) + pad) * zoom + x;
        const o = (py * W + px) * 4;
        const sy = Math.floor(y / zoom), sx = Math.floor(x / zoom);
        for (let k = 0; k < 3; k++) {
          const v = images[i * c * h * w + (c === 1 ? 0 : k) * h * w + sy * w + sx];
          png.data[o + k] = Math.round(Math.max(0, Math.min(1, (v + 1) / 2)) * 255);
        }
        png.data[o + 3] = 255;
      }
    }
  }
  return PNG.sync.write(png);
}

export function writePngGrid(file: string, images: Float32Array, n: number, c: number, h: number, w: number, cols: number, zoom = 2): void {
  writeFileAtomic(file, gridPng(images, n, c, h, w, cols, 1, zoom));
}
