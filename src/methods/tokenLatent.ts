// The frame every token-space autoencoder's latent space shares (RAE stage 1, SVG stage 1, a UniFlow
// tokenizer: rae/latent.ts, svg/latent.ts, uniflow/latent.ts): latents are a model's token rows
// (B, N, C) on a g×g grid laid out channel-major (B, C, g, g), normalised by statistics fitted once
// on the first training images — per element of (C, g, g) (RAE, UniFlow) or per channel (SVG) — and
// decoded back through the model in batches. A subclass says only how its model turns images into
// token rows and token rows into images.
// Not here: the dispatch by file kind (build/latentSpace.ts), the models.
import { empty, tensor, type Tensor } from '../tensor/tensor.ts';
import { fmtShape } from '../tensor/shape.ts';
import { noGrad } from '../autograd/tape.ts';
import { tidy } from '../tensor/tidy.ts';
import type { ImageDataset } from '../data/index.ts';
import type { LatentSpace } from './method.ts';

/** ε under the square root of the normalisation (RAE and SVG: 1e-5). */
export const LATENT_NORM_EPS = 1e-5;

/** Per element of the latent (C·g·g values) or per channel (C values). */
export type LatentStatsPer = 'element' | 'channel';

/** In place: z[b, e] ← (z[b, e] − mean[e]) / std[e] over (B, E). */
export function normaliseElements(z: Float32Array, mean: ArrayLike<number>, std: ArrayLike<number>): void {
  const E = mean.length;
  if (z.length % E !== 0) throw new Error(`normaliseElements: ${z.length} values are not rows of ${E}`);
  for (let i = 0; i < z.length; i++) z[i] = (z[i] - mean[i % E]) / std[i % E];
}

/** The inverse: z[b, e] ← z[b, e]·std[e] + mean[e]. */
export function denormaliseElements(z: Float32Array, mean: ArrayLike<number>, std: ArrayLike<number>): void {
  const E = mean.length;
  if (z.length % E !== 0) throw new Error(`denormaliseElements: ${z.length} values are not rows of ${E}`);
  for (let i = 0; i < z.length; i++) z[i] = z[i] * std[i % E] + mean[i % E];
}

/** Per-element mean and √(var + eps) of n rows of E values (float64, two passes; var divided by n). */
export function elementStats(rows: Float32Array, n: number, eps = LATENT_NORM_EPS): { mean: Float64Array; std: Float64Array } {
  if (!(n >= 1) || rows.length % n !== 0) throw new Error(`elementStats: ${rows.length} values are not ${n} rows`);
  const E = rows.length / n, mean = new Float64Array(E), v = new Float64Array(E);
  for (let i = 0; i < rows.length; i++) mean[i % E] += rows[i];
  for (let e = 0; e < E; e++) mean[e] /= n;
  for (let i = 0; i < rows.length; i++) { const d = rows[i] - mean[i % E]; v[i % E] += d * d; }
  return { mean, std: v.map((s) => Math.sqrt(s / n + eps)) };
}

/** Per-channel mean and √(var + eps) of channel-major latents (n, C, P) (float64, two passes, var divided by n·P). */
export function channelStats(z: Float32Array, n: number, C: number, eps = LATENT_NORM_EPS): { mean: Float64Array; std: Float64Array } {
  if (!(n >= 1) || z.length % (n * C) !== 0) throw new Error(`channelStats: ${z.length} values are not ${n} latents of ${C} channels`);
  const P = z.length / (n * C), mean = new Float64Array(C), v = new Float64Array(C);
  for (let b = 0; b < n; b++) for (let c = 0; c < C; c++) { const o = (b * C + c) * P; for (let p = 0; p < P; p++) mean[c] += z[o + p]; }
  for (let c = 0; c < C; c++) mean[c] /= n * P;
  for (let b = 0; b < n; b++) for (let c = 0; c < C; c++) { const o = (b * C + c) * P; for (let p = 0; p < P; p++) { const e = z[o + p] - mean[c]; v[c] += e * e; } }
  return { mean, std: v.map((s) => Math.sqrt(s / (n * P) + eps)) };
}

/** In place over channel-major latents (·, C, P): z ← (z − μ_c)/σ_c, or z ← z·σ_c + μ_c (inverse). */
export function normaliseChannels(z: Float32Array, P: number, mean: ArrayLike<number>, std: ArrayLike<number>, inverse = false): void {
  const C = mean.length;
  if (z.length % (C * P) !== 0) throw new Error(`normaliseChannels: ${z.length} values are not latents of ${C} channels × ${P} positions`);
  for (let i = 0; i < z.length; i++) {
    const c = Math.floor(i / P) % C;
    z[i] = inverse ? z[i] * std[c] + mean[c] : (z[i] - mean[c]) / std[c];
  }
}

/** (B, N, C) token rows → (B, C, N) channel-major, into `out` at `offset`. */
function tokensToChannels(t: ArrayLike<number>, B: number, N: number, C: number, out: Float32Array, offset: number): void {
  for (let b = 0; b < B; b++) {
    for (let n = 0; n < N; n++) {
      const src = (b * N + n) * C, dst = offset + b * C * N + n;
      for (let c = 0; c < C; c++) out[dst + c * N] = t[src + c];
    }
  }
}

/** (B, C, N) → (B, N, C). */
function channelsToTokens(z: Float32Array, B: number, N: number, C: number): Float32Array {
  const out = new Float32Array(z.length);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const src = (b * C + c) * N;
      for (let n = 0; n < N; n++) out[(b * N + n) * C + c] = z[src + n];
    }
  }
  return out;
}

export interface TokenLatentShape {
  /** Token channels C. */
  channels: number;
  /** Token grid side g. */
  grid: number;
  /** Image channels and side the model reads and writes. */
  imageChannels: number;
  imageSide: number;
  /** 'an RAE', 'an SVG autoencoder', ...: how errors name the file's kind. */
  kind: string;
  /** "the RAE's token grid", ...: how errors name the grid. */
  gridName: string;
  /** Images per model batch when encoding or decoding (SVG: also its matching groups). */
  batch: number;
}

export abstract class TokenLatentSpace implements LatentSpace {
  readonly channels: number;
  readonly grid: number;
  readonly inputChannels: number;
  readonly imageChannels: number;
  readonly factor: number;
  readonly kind: string;
  readonly gridName: string;
  readonly batch: number;

  constructor(
    readonly file: string,
    shape: TokenLatentShape,
    readonly per: LatentStatsPer,
    /** μ and √(var + eps), per element of (C, g, g) or per channel. */
    readonly mean: Float64Array,
    readonly std: Float64Array,
  ) {
    const { channels: C, grid: g } = shape;
    if (shape.imageSide % g !== 0) throw new Error(`latent.autoencoder ${file}: the decoder writes ${shape.imageSide}² images from a ${g}² token grid`);
    const E = per === 'element' ? C * g * g : C;
    if (mean.length !== E || std.length !== E) throw new Error(`latent.autoencoder ${file}: statistics of ${mean.length}/${std.length} ${per}s for latents of ${C}×${g}×${g}`);
    for (let i = 0; i < E; i++) if (!(std[i] > 0)) throw new Error(`latent.autoencoder ${file}: std of ${per} ${i} must be > 0, got ${std[i]}`);
    this.channels = C;
    this.grid = g;
    this.inputChannels = shape.imageChannels;
    this.imageChannels = shape.imageChannels;
    this.factor = shape.imageSide / g;
    this.kind = shape.kind;
    this.gridName = shape.gridName;
    this.batch = shape.batch;
  }

  /** Token rows (m, N, C) of m images (m, C_img, H, W); called inside noGrad and tidy. */
  protected abstract tokens(xs: Tensor): Tensor;

  /**
   * Images (m, C_img, H, W) of m latents' token rows (m, N, C), de-normalised; `normalised` holds the
   * same latents as given to decode (channel-major), for a decoder that draws noise from them.
   */
  protected abstract images(tokens: Tensor, normalised: Float32Array, m: number): Tensor;

  side(imageSide: number, where = 'data.size'): number {
    if (imageSide !== this.grid * this.factor) throw new Error(`latent.autoencoder ${this.file} is ${this.kind} of ${this.grid * this.factor}² images (a ${this.grid}² token grid); ${where} is ${imageSide}`);
    return this.grid;
  }

  /** Un-normalised latents (B, C, g, g) of images (B, C_img, H, W), channel-major. */
  rawLatents(x: Tensor): Float32Array {
    if (x.ndim !== 4 || x.shape[1] !== this.inputChannels) throw new Error(`latent.autoencoder ${this.file} encodes (B, ${this.inputChannels}, H, W) images, got ${fmtShape(x.shape)}`);
    this.side(x.shape[2], 'the image side');
    this.side(x.shape[3], 'the image width');
    const B = x.shape[0], per = x.size / B, C = this.channels, N = this.grid * this.grid;
    const out = new Float32Array(B * C * N);
    for (let s = 0; s < B; s += this.batch) {
      const m = Math.min(this.batch, B - s);
      noGrad(() => tidy(() => {
        const xs = tensor(x.data.subarray(s * per, (s + m) * per) as Float32Array, [m, ...x.shape.slice(1)]);
        tokensToChannels(this.tokens(xs).data, m, N, C, out, s * C * N);
      }));
    }
    return out;
  }

  private normalise(z: Float32Array, inverse: boolean): void {
    if (this.per === 'channel') normaliseChannels(z, this.grid * this.grid, this.mean, this.std, inverse);
    else if (inverse) denormaliseElements(z, this.mean, this.std);
    else normaliseElements(z, this.mean, this.std);
  }

  encode(x: Tensor): Tensor {
    const raw = this.rawLatents(x);
    this.normalise(raw, false);
    const z = empty([x.shape[0], this.channels, this.grid, this.grid]);
    (z.data as Float32Array).set(raw);
    return z;
  }

  decode(latents: Float32Array, n: number, side: number): Float32Array {
    const C = this.channels, N = this.grid * this.grid, E = C * N;
    if (side !== this.grid) throw new Error(`latent space ${this.file}: latents of side ${side}, ${this.gridName} is ${this.grid}`);
    if (latents.length !== n * E) throw new Error(`latent space ${this.file}: ${latents.length} values for ${n} latents of ${C}×${side}×${side}`);
    const img = this.imageChannels * (side * this.factor) ** 2, out = new Float32Array(n * img);
    for (let s = 0; s < n; s += this.batch) {
      const m = Math.min(this.batch, n - s);
      const normalised = latents.subarray(s * E, (s + m) * E), z = normalised.slice();
      this.normalise(z, true);
      const tokens = channelsToTokens(z, m, N, C);
      noGrad(() => tidy(() => { out.set(this.images(tensor(tokens, [m, N, C]), normalised, m).data, s * img); }));
    }
    return out;
  }
}

/**
 * A space with its statistics fitted on the first `statImages` images of `data` (all when fewer), in
 * order: deterministic, so every actor that opens the space computes the same numbers. `make` builds
 * the space from statistics; the fit encodes through a space with neutral ones.
 */
export function fitTokenLatentSpace<S extends TokenLatentSpace>(file: string, per: LatentStatsPer, statsLength: number, data: ImageDataset, statImages: number, make: (mean: Float64Array, std: Float64Array) => S): S {
  const probe = make(new Float64Array(statsLength), new Float64Array(statsLength).fill(1));
  const n = Math.min(statImages, data.count), size = data.channels * data.height * data.width;
  if (n < 2) throw new Error(`latent.autoencoder ${file}: the latent statistics need at least 2 training images, the dataset has ${data.count}`);
  const x = new Float32Array(n * size);
  for (let i = 0; i < n; i++) data.get(i, x, i * size);
  const raw = probe.rawLatents(tensor(x, [n, data.channels, data.height, data.width]));
  const { mean, std } = per === 'element' ? elementStats(raw, n) : channelStats(raw, n, probe.channels);
  return make(mean, std);
}
