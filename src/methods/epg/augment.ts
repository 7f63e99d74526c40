// EPG's two views for the contrastive term (methods-b §7, step 1: "two augmented views"), small and
// seeded so both engines and a resume see the same pixels: per image, a random square crop of side
// a·H (a ~ U(crop_min, 1)) at a uniform offset, resized back to H×W by bilinear sampling (pixel
// centres, edges clamped), then a horizontal flip with probability ½. Every draw comes from the
// given Rng, four numbers per image in the order (a, offset y, offset x, flip).
// The official views (rcm/dataset.py, BYOL's asymmetric pair: RandomResizedCrop scale (0.08, 1),
// ColorJitter(0.4, 0.4, 0.2, 0.1) with p 0.8, grayscale p 0.2, Gaussian blur σ ∈ (0.1, 2) px with
// p 1.0 on view 1 and 0.1 on view 2, solarize p 0.2 on view 2 only, flip) are larger. What applies
// to one-channel images is here behind spec fields, default off (`Photometric`, applied after the
// crop and flip, which commute with them; its draws come from the view Rng's child 'photometric',
// so the crop draws do not move): brightness and contrast jitter in a random order (torchvision's
// factors U(max(0, 1 − s), 1 + s); brightness v·b, contrast c·v + (1 − c)·mean(image), clamped to
// the range), a Gaussian blur (σ px, a normalised kernel of radius ⌈3σ⌉, edges clamped) and
// solarize (PIL: v ≥ 128/255 → 1 − v), on the image read in [0, 1] from [−1, 1]. Saturation, hue
// and grayscale do nothing to one channel and are left out; the crop has no aspect-ratio jitter.
import { fromData, type Tensor } from '../../tensor/tensor.ts';
import type { Rng } from '../../tensor/rng.ts';

/** The photometric part of a view (all off: strengths 0, blur [0, 0], solarize 0). */
export interface Photometric {
  brightness: number;
  contrast: number;
  /** Probability that the jitter applies to an image. */
  jitterP: number;
  /** Blur σ range in pixels ([0, 0]: none) and its probability per view (view 1, view 2). */
  blur: readonly [number, number];
  blurP: readonly [number, number];
  /** Solarize probability on view 2 (view 1 never). */
  solarizeP: number;
}

export const NO_PHOTOMETRIC: Photometric = { brightness: 0, contrast: 0, jitterP: 0.8, blur: [0, 0], blurP: [1, 0.1], solarizeP: 0 };

/** Whether any photometric augmentation is on. */
export function photometricOn(p: Photometric): boolean {
  return p.brightness > 0 || p.contrast > 0 || p.blur[1] > 0 || p.solarizeP > 0;
}

function blurPlane(src: Float64Array, H: number, W: number, sigma: number): Float64Array {
  const r = Math.max(1, Math.ceil(3 * sigma)), k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const z = k.reduce((a, v) => a + v, 0);
  for (let i = 0; i < k.length; i++) k[i] /= z;
  const tmp = new Float64Array(H * W), out = new Float64Array(H * W);
  for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
    let acc = 0;
    for (let d = -r; d <= r; d++) acc += k[d + r] * src[i * W + Math.min(W - 1, Math.max(0, j + d))];
    tmp[i * W + j] = acc;
  }
  for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
    let acc = 0;
    for (let d = -r; d <= r; d++) acc += k[d + r] * tmp[Math.min(H - 1, Math.max(0, i + d)) * W + j];
    out[i * W + j] = acc;
  }
  return out;
}

/**
 * The photometric augmentation of a view (B, C, H, W) in [−1, 1], in place, seven draws per image
 * from rng in the order (jitter?, order, brightness, contrast, blur?, blur σ, solarize?).
 */
export function photometric(v: Float32Array | Float64Array, shape: readonly number[], rng: Rng, p: Photometric, view: 1 | 2): void {
  const [B, C, H, W] = shape, per = C * H * W;
  const u = rng.uniformArray(7 * B);
  const clamp01 = (a: number) => Math.min(1, Math.max(0, a));
  for (let b = 0; b < B; b++) {
    const img = new Float64Array(per);
    for (let i = 0; i < per; i++) img[i] = (v[b * per + i] + 1) / 2;
    const d = u.subarray(7 * b, 7 * b + 7);
    if (d[0] < p.jitterP && (p.brightness > 0 || p.contrast > 0)) {
      const bf = Math.max(0, 1 - p.brightness) + (1 + p.brightness - Math.max(0, 1 - p.brightness)) * d[2];
      const cf = Math.max(0, 1 - p.contrast) + (1 + p.contrast - Math.max(0, 1 - p.contrast)) * d[3];
      const bright = () => { if (p.brightness > 0) for (let i = 0; i < per; i++) img[i] = clamp01(img[i] * bf); };
      const contrast = () => {
        if (!(p.contrast > 0)) return;
        let m = 0;
        for (let i = 0; i < per; i++) m += img[i];
        m /= per;
        for (let i = 0; i < per; i++) img[i] = clamp01(cf * img[i] + (1 - cf) * m);
      };
      if (d[1] < 0.5) { bright(); contrast(); } else { contrast(); bright(); }
    }
    if (p.blur[1] > 0 && d[4] < p.blurP[view - 1]) {
      const sigma = p.blur[0] + (p.blur[1] - p.blur[0]) * d[5];
      // σ ≤ 1e-3 px: every off-centre tap is below e^{−500000}; the blur is the identity (and 1/σ² would overflow)
      if (sigma > 1e-3) for (let c = 0; c < C; c++) img.set(blurPlane(img.subarray(c * H * W, (c + 1) * H * W), H, W, sigma), c * H * W);
    }
    if (view === 2 && d[6] < p.solarizeP) for (let i = 0; i < per; i++) if (img[i] >= 128 / 255) img[i] = 1 - img[i];
    for (let i = 0; i < per; i++) v[b * per + i] = 2 * img[i] - 1;
  }
}

/** x (B, C, H, W) → one augmented view (B, C, H, W) of x's dtype, no gradient; `photo` adds the photometric part of view 1 or 2. */
export function augmentView(x: Tensor, rng: Rng, cropMin: number, photo?: { p: Photometric; view: 1 | 2 }): Tensor {
  if (x.ndim !== 4 || x.shape[2] !== x.shape[3]) throw new Error(`epg augmentView: expected square images (B, C, H, H), got [${x.shape.join(', ')}]`);
  if (!(cropMin > 0 && cropMin <= 1)) throw new Error(`epg.crop_min must be in (0, 1], got ${cropMin}`);
  const [B, C, H] = x.shape, W = H, src = x.data, out = x.dtype === 'float64' ? new Float64Array(B * C * H * W) : new Float32Array(B * C * H * W);
  const u = rng.uniformArray(4 * B);
  for (let b = 0; b < B; b++) {
    const a = cropMin + (1 - cropMin) * u[4 * b], side = a * H;
    const oy = u[4 * b + 1] * (H - side), ox = u[4 * b + 2] * (W - side), flip = u[4 * b + 3] < 0.5;
    for (let c = 0; c < C; c++) {
      const base = (b * C + c) * H * W;
      for (let i = 0; i < H; i++) {
        const sy = Math.min(H - 1, Math.max(0, oy + ((i + 0.5) * side) / H - 0.5));
        const y0 = Math.floor(sy), y1 = Math.min(H - 1, y0 + 1), fy = sy - y0;
        for (let j = 0; j < W; j++) {
          const jj = flip ? W - 1 - j : j;
          const sx = Math.min(W - 1, Math.max(0, ox + ((jj + 0.5) * side) / W - 0.5));
          const x0 = Math.floor(sx), x1 = Math.min(W - 1, x0 + 1), fx = sx - x0;
          const top = src[base + y0 * W + x0] * (1 - fx) + src[base + y0 * W + x1] * fx;
          const bot = src[base + y1 * W + x0] * (1 - fx) + src[base + y1 * W + x1] * fx;
          out[base + i * W + j] = top * (1 - fy) + bot * fy;
        }
      }
    }
  }
  if (photo && photometricOn(photo.p)) photometric(out, [B, C, H, W], rng.child('photometric'), photo.p, photo.view);
  return fromData(out, [B, C, H, W]);
}
