// Image transforms on float CHW planes: centre crop, centred pad, resize, horizontal flip, and
// the uint8 → [-1, 1] conversion. Pure functions on Float32Arrays; no tensors, no autograd (these
// prepare data, they are never differentiated). Random choices (which samples flip) belong to the
// caller's Rng — see loader.ts.
//
// Resize is separable. 'area' averages each output pixel's footprint in the source with exact
// fractional coverage (PIL's BOX filter; anti-aliased, so it is right for shrinking); 'bilinear'
// uses half-pixel centres and clamps at the edges (PyTorch `interpolate(mode='bilinear',
// align_corners=False)`, no anti-aliasing; right for enlarging). 'auto' picks, per axis, area
// when that axis shrinks and bilinear when it grows.
import { byteToSigned } from './dataset.ts';

/** One image, (C, H, W). */
export interface Plane { data: Float32Array; channels: number; height: number; width: number }

export type ResizeMode = 'area' | 'bilinear' | 'auto';

/** uint8 values → [-1, 1]. */
export function bytesToSigned(src: ArrayLike<number>, out: Float32Array, offset = 0): Float32Array {
  for (let i = 0; i < src.length; i++) out[offset + i] = byteToSigned(src[i]);
  return out;
}

/** The (h, w) window at the centre; the odd pixel, if any, is dropped from the bottom/right. */
export function centreCrop(img: Plane, h: number, w: number): Plane {
  const { channels: C, height: H, width: W } = img;
  if (h > H || w > W) throw new Error(`centreCrop: ${h}×${w} does not fit in ${H}×${W}`);
  if (h === H && w === W) return img;
  const top = Math.floor((H - h) / 2), left = Math.floor((W - w) / 2);
  const out = new Float32Array(C * h * w);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < h; y++) {
      const s = c * H * W + (top + y) * W + left;
      out.set(img.data.subarray(s, s + w), c * h * w + y * w);
    }
  }
  return { data: out, channels: C, height: h, width: w };
}

/** Pad to (h, w) with `value` around a centred image; the odd pixel goes to the bottom/right. */
export function centrePad(img: Plane, h: number, w: number, value: number): Plane {
  const { channels: C, height: H, width: W } = img;
  if (h < H || w < W) throw new Error(`centrePad: ${H}×${W} does not fit in ${h}×${w}`);
  if (h === H && w === W) return img;
  const top = Math.floor((h - H) / 2), left = Math.floor((w - W) / 2);
  const out = new Float32Array(C * h * w).fill(value);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      const s = c * H * W + y * W;
      out.set(img.data.subarray(s, s + W), c * h * w + (top + y) * w + left);
    }
  }
  return { data: out, channels: C, height: h, width: w };
}

/** Taps of a 1-D resampler: output o reads src[idx[o][k]] · wt[o][k]. */
export interface Taps { idx: Int32Array[]; wt: Float64Array[] }

export function areaTaps(inN: number, outN: number): Taps {
  const scale = inN / outN;
  const idx: Int32Array[] = [], wt: Float64Array[] = [];
  for (let o = 0; o < outN; o++) {
    const a = (o * inN) / outN, b = ((o + 1) * inN) / outN;
    const i0 = Math.floor(a), i1 = Math.min(Math.ceil(b), inN);
    const ii: number[] = [], ww: number[] = [];
    for (let i = i0; i < i1; i++) {
      const cover = Math.min(b, i + 1) - Math.max(a, i);
      if (cover > 0) { ii.push(i); ww.push(cover / scale); }
    }
    idx.push(Int32Array.from(ii)); wt.push(Float64Array.from(ww));
  }
  return { idx, wt };
}

export function bilinearTaps(inN: number, outN: number): Taps {
  const idx: Int32Array[] = [], wt: Float64Array[] = [];
  for (let o = 0; o < outN; o++) {
    const src = Math.max(0, ((o + 0.5) * inN) / outN - 0.5);
    const i0 = Math.min(Math.floor(src), inN - 1), i1 = Math.min(i0 + 1, inN - 1);
    const l = src - i0;
    if (i1 === i0 || l === 0) { idx.push(Int32Array.of(i0)); wt.push(Float64Array.of(1)); }
    else { idx.push(Int32Array.of(i0, i1)); wt.push(Float64Array.of(1 - l, l)); }
  }
  return { idx, wt };
}

function taps(inN: number, outN: number, mode: ResizeMode): Taps {
  const m = mode === 'auto' ? (outN < inN ? 'area' : 'bilinear') : mode;
  return m === 'area' ? areaTaps(inN, outN) : bilinearTaps(inN, outN);
}

/** Resize to (h, w): rows first, then columns, accumulating in float64. */
export function resize(img: Plane, h: number, w: number, mode: ResizeMode = 'auto'): Plane {
  const { channels: C, height: H, width: W } = img;
  if (!(h >= 1 && w >= 1 && Number.isInteger(h) && Number.isInteger(w))) throw new Error(`resize: bad target size ${h}×${w}`);
  if (h === H && w === W) return img;
  const tx = taps(W, w, mode), ty = taps(H, h, mode);
  const tmp = new Float64Array(C * H * w); // (C, H, w)
  for (let r = 0; r < C * H; r++) {
    for (let ox = 0; ox < w; ox++) {
      const ii = tx.idx[ox], ww = tx.wt[ox];
      let s = 0;
      for (let k = 0; k < ii.length; k++) s += img.data[r * W + ii[k]] * ww[k];
      tmp[r * w + ox] = s;
    }
  }
  const out = new Float32Array(C * h * w); // (C, h, w)
  for (let c = 0; c < C; c++) {
    for (let oy = 0; oy < h; oy++) {
      const ii = ty.idx[oy], ww = ty.wt[oy];
      for (let ox = 0; ox < w; ox++) {
        let s = 0;
        for (let k = 0; k < ii.length; k++) s += tmp[(c * H + ii[k]) * w + ox] * ww[k];
        out[(c * h + oy) * w + ox] = s;
      }
    }
  }
  return { data: out, channels: C, height: h, width: w };
}

/**
 * Centre-crop to the target's aspect ratio (the largest such window), then resize: what the
 * PNG folder does to every image so that nothing is stretched.
 */
export function cropResize(img: Plane, h: number, w: number, mode: ResizeMode = 'auto'): Plane {
  const { height: H, width: W } = img;
  // Compare H/W with h/w in integers to avoid a rounding-dependent crop.
  let ch = H, cw = W;
  if (H * w > h * W) ch = Math.max(1, Math.round((W * h) / w));
  else if (H * w < h * W) cw = Math.max(1, Math.round((H * w) / h));
  return resize(centreCrop(img, ch, cw), h, w, mode);
}

/** Mirror one (C, H, W) sample left–right in place at data[offset ..]. */
export function hflipInPlace(data: Float32Array, offset: number, C: number, H: number, W: number): void {
  for (let r = 0; r < C * H; r++) {
    const row = offset + r * W;
    for (let a = row, b = row + W - 1; a < b; a++, b--) {
      const t = data[a]; data[a] = data[b]; data[b] = t;
    }
  }
}
