// Spatial resampling of (N, C, H, W) images with PyTorch semantics: avgPool2d (floor mode,
// padding counted in the divisor), nearest upsampling by an integer factor, and bilinear
// interpolation (align_corners False or True). Not here: max pooling, adaptive pooling, bicubic.
import { empty, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { record } from '../tape.ts';
import { isMetaArray, metaCount } from '../../kernels/meta.ts';
import type { Pair } from './conv.ts';

const pair = (p: Pair): [number, number] => (typeof p === 'number' ? [p, p] : [p[0], p[1]]);

function nchw(x: Tensor, what: string): [number, number, number, number] {
  if (x.ndim !== 4) throw new Error(`${what}: input must be (N, C, H, W), got ${fmtShape(x.shape)}`);
  return [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
}

/**
 * F.avg_pool2d(x, kernel, stride, padding) with ceil_mode=False, count_include_pad=True: every
 * window sums its in-image values and divides by kh*kw. OH = floor((H + 2*ph - kh) / sh) + 1.
 */
export function avgPool2d(x: Tensor, kernel: Pair, stride?: Pair, padding: Pair = 0): Tensor {
  const [n, c, h, w] = nchw(x, 'avgPool2d');
  const [kh, kw] = pair(kernel), [sh, sw] = pair(stride ?? kernel), [ph, pw] = pair(padding);
  if (2 * ph > kh || 2 * pw > kw) throw new Error(`avgPool2d: padding ${ph}x${pw} must be at most half the kernel ${kh}x${kw}`);
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1, ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  if (oh < 1 || ow < 1) throw new Error(`avgPool2d: kernel ${kh}x${kw} does not fit ${h}x${w}`);
  const inv = 1 / (kh * kw);
  const planes = n * c;
  // visit(inputOffset, outputOffset) for every (window, in-image tap) pair
  const each = (visit: (xi: number, yi: number) => void): void => {
    for (let p = 0; p < planes; p++) {
      for (let oy = 0; oy < oh; oy++) {
        const y0 = Math.max(oy * sh - ph, 0), y1 = Math.min(oy * sh - ph + kh, h);
        for (let ox = 0; ox < ow; ox++) {
          const x0 = Math.max(ox * sw - pw, 0), x1 = Math.min(ox * sw - pw + kw, w);
          const yi = (p * oh + oy) * ow + ox;
          for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) visit((p * h + iy) * w + ix, yi);
        }
      }
    }
  };
  const out = empty([n, c, oh, ow], x.dtype);
  const o = out.data, xd = x.data;
  each((xi, yi) => { o[yi] += xd[xi] * inv; });
  return record('avgPool2d', [x], out, (g) => {
    const dx = empty(x.shape, x.dtype);
    const d = dx.data, gd = g.data;
    each((xi, yi) => { d[xi] += gd[yi] * inv; });
    return [dx];
  });
}

/** F.interpolate(mode='nearest') by integer factors: out[y, x] = in[floor(y / s), floor(x / s)]. */
export function upsampleNearest(x: Tensor, scale: Pair): Tensor {
  const [n, c, h, w] = nchw(x, 'upsampleNearest');
  const [fh, fw] = pair(scale);
  if (!Number.isInteger(fh) || !Number.isInteger(fw) || fh < 1 || fw < 1) throw new Error(`upsampleNearest: scale must be positive integers, got ${fh}x${fw}`);
  const oh = h * fh, ow = w * fw, planes = n * c;
  const out = empty([n, c, oh, ow], x.dtype);
  const o = out.data, xd = x.data;
  if (isMetaArray(xd)) { // shape-only (kernels/meta.ts): count, do not walk
    metaCount('elementwise', 0, 2 * out.size);
    return record('upsampleNearest', [x], out, () => { metaCount('elementwise', out.size, 2 * out.size); return [empty(x.shape, x.dtype)]; });
  }
  for (let p = 0; p < planes; p++) {
    for (let oy = 0; oy < oh; oy++) {
      const src = (p * h + Math.floor(oy / fh)) * w, dst = (p * oh + oy) * ow;
      for (let ox = 0; ox < ow; ox++) o[dst + ox] = xd[src + Math.floor(ox / fw)];
    }
  }
  return record('upsampleNearest', [x], out, (g) => {
    const dx = empty(x.shape, x.dtype);
    const d = dx.data, gd = g.data;
    for (let p = 0; p < planes; p++) {
      for (let oy = 0; oy < oh; oy++) {
        const dst = (p * h + Math.floor(oy / fh)) * w, src = (p * oh + oy) * ow;
        for (let ox = 0; ox < ow; ox++) d[dst + Math.floor(ox / fw)] += gd[src + ox];
      }
    }
    return [dx];
  });
}

/** Per output coordinate: the two source indices and the weight of the second. */
interface Taps { i0: Int32Array; i1: Int32Array; t: Float64Array }

/**
 * PyTorch's area_pixel_compute_source_index for linear modes. ratio is in/out, or 1/scale when
 * the caller gave a scale factor (PyTorch uses the factor itself, not the rounded sizes).
 */
function taps(inSize: number, outSize: number, alignCorners: boolean, scale: number | null): Taps {
  const i0 = new Int32Array(outSize), i1 = new Int32Array(outSize), t = new Float64Array(outSize);
  const ratio = alignCorners
    ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0)
    : (scale !== null && scale > 0 ? 1 / scale : inSize / outSize);
  for (let o = 0; o < outSize; o++) {
    if (inSize === outSize) { i0[o] = i1[o] = o; continue; } // PyTorch copies equal sizes whatever the scale
    const src = alignCorners ? ratio * o : Math.max(ratio * (o + 0.5) - 0.5, 0);
    const a = Math.min(Math.floor(src), inSize - 1);
    i0[o] = a;
    i1[o] = a < inSize - 1 ? a + 1 : a;
    t[o] = Math.min(Math.max(src - a, 0), 1);
  }
  return { i0, i1, t };
}

export type BilinearSize = { size: readonly [number, number] } | { scale: Pair };

/**
 * F.interpolate(mode='bilinear', size=... or scale_factor=..., align_corners). x: (N, C, H, W).
 * With a scale the output is floor(H * scale) and source coordinates use 1/scale, as in PyTorch
 * (recompute_scale_factor unset).
 */
export function upsampleBilinear(x: Tensor, target: BilinearSize, alignCorners = false): Tensor {
  const [n, c, h, w] = nchw(x, 'upsampleBilinear');
  let oh: number, ow: number, sH: number | null = null, sW: number | null = null;
  if ('size' in target) [oh, ow] = target.size;
  else {
    [sH, sW] = pair(target.scale);
    oh = Math.floor(h * sH);
    ow = Math.floor(w * sW);
  }
  if (!Number.isInteger(oh) || !Number.isInteger(ow) || oh < 1 || ow < 1) throw new Error(`upsampleBilinear: output size ${oh}x${ow} is invalid`);
  const ty = taps(h, oh, alignCorners, sH), tx = taps(w, ow, alignCorners, sW);
  const planes = n * c;
  const out = empty([n, c, oh, ow], x.dtype);
  const o = out.data, xd = x.data;
  if (isMetaArray(xd)) { // shape-only (kernels/meta.ts): count, do not walk
    metaCount('elementwise', 0, 2 * out.size);
    return record('upsampleNearest', [x], out, () => { metaCount('elementwise', out.size, 2 * out.size); return [empty(x.shape, x.dtype)]; });
  }
  for (let p = 0; p < planes; p++) {
    const base = p * h * w;
    for (let oy = 0; oy < oh; oy++) {
      const r0 = base + ty.i0[oy] * w, r1 = base + ty.i1[oy] * w, wy = ty.t[oy];
      const dst = (p * oh + oy) * ow;
      for (let ox = 0; ox < ow; ox++) {
        const a = tx.i0[ox], b = tx.i1[ox], wx = tx.t[ox];
        const top = xd[r0 + a] * (1 - wx) + xd[r0 + b] * wx;
        const bot = xd[r1 + a] * (1 - wx) + xd[r1 + b] * wx;
        o[dst + ox] = top * (1 - wy) + bot * wy;
      }
    }
  }
  return record('upsampleBilinear', [x], out, (g) => {
    const dx = empty(x.shape, x.dtype);
    const d = dx.data, gd = g.data;
    for (let p = 0; p < planes; p++) {
      const base = p * h * w;
      for (let oy = 0; oy < oh; oy++) {
        const r0 = base + ty.i0[oy] * w, r1 = base + ty.i1[oy] * w, wy = ty.t[oy];
        const src = (p * oh + oy) * ow;
        for (let ox = 0; ox < ow; ox++) {
          const a = tx.i0[ox], b = tx.i1[ox], wx = tx.t[ox], gv = gd[src + ox];
          d[r0 + a] += gv * (1 - wy) * (1 - wx);
          d[r0 + b] += gv * (1 - wy) * wx;
          d[r1 + a] += gv * wy * (1 - wx);
          d[r1 + b] += gv * wy * wx;
        }
      }
    }
    return [dx];
  });
}
