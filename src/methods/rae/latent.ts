// RAE's latent space, as another spec's `latent.autoencoder` (Zheng et al., "Diffusion Transformers
// with Representation Autoencoders", arXiv 2510.11690; official code github.com/bytetriper/RAE,
// src/stage1/rae.py (encode/decode with the latent normalisation) and src/stage2 (training in it);
// methods-b §5 "Latent normalisation"). A stage-1 run checkpoint (methods: [rae], rae.stage decoder)
// is the autoencoder:
//   encode(x) = (z − μ) / √(var + 1e-5),  z = LN_noaffine(encoder tokens) (B, N, d) laid out as (B, d, g, g)
//   decode(z_n) = decoder_EMA(z_n·√(var + 1e-5) + μ)   with τ = 0 (no noise augmentation)
// μ and var are per element (d·g·g values: statistics over the batch dimension only), computed in
// float64 from the first rae.stat_images training images of the checkpoint spec's dataset, in order:
// deterministic, so every actor that opens the space computes the same numbers. var is the
// population variance (divided by n).
// Not here: the dispatch by file kind (build/latentSpace.ts), the stage-1 model (model.ts).
import { empty, tensor, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { noGrad } from '../../autograd/tape.ts';
import { tidy } from '../../tensor/tidy.ts';
import type { ImageDataset } from '../../data/index.ts';
import type { FrozenEncoder } from '../encoder.ts';
import type { LatentSpace } from '../method.ts';
import type { RaeDecoderModel } from './model.ts';

/** ε under the square root of the normalisation (RAE: 1e-5). */
export const RAE_NORM_EPS = 1e-5;

/** Images per model batch when encoding or decoding (memory bound; results do not depend on it). */
const BATCH = 64;

/** (B, N, d) token rows → (B, d, N) channel-major, into `out` at `offset`. */
function tokensToChannels(t: ArrayLike<number>, B: number, N: number, d: number, out: Float32Array, offset: number): void {
  for (let b = 0; b < B; b++) {
    for (let n = 0; n < N; n++) {
      const src = (b * N + n) * d, dst = offset + b * d * N + n;
      for (let c = 0; c < d; c++) out[dst + c * N] = t[src + c];
    }
  }
}

/** (B, d, N) → (B, N, d). */
function channelsToTokens(z: Float32Array, B: number, N: number, d: number): Float32Array {
  const out = new Float32Array(z.length);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < d; c++) {
      const src = (b * d + c) * N;
      for (let n = 0; n < N; n++) out[(b * N + n) * d + c] = z[src + n];
    }
  }
  return out;
}

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
export function elementStats(rows: Float32Array, n: number, eps = RAE_NORM_EPS): { mean: Float64Array; std: Float64Array } {
  if (!(n >= 1) || rows.length % n !== 0) throw new Error(`elementStats: ${rows.length} values are not ${n} rows`);
  const E = rows.length / n, mean = new Float64Array(E), v = new Float64Array(E);
  for (let i = 0; i < rows.length; i++) mean[i % E] += rows[i];
  for (let e = 0; e < E; e++) mean[e] /= n;
  for (let i = 0; i < rows.length; i++) { const d = rows[i] - mean[i % E]; v[i % E] += d * d; }
  return { mean, std: v.map((s) => Math.sqrt(s / n + eps)) };
}

export class RaeLatentSpace implements LatentSpace {
  readonly channels: number;
  readonly inputChannels: number;
  readonly imageChannels: number;
  readonly factor: number;
  /** Token grid side g (the encoder's). */
  readonly grid: number;

  constructor(
    readonly file: string,
    /** The stage-1 model holding the EMA decoder and the encoder's norm affine (eval mode). */
    readonly model: RaeDecoderModel,
    readonly encoder: FrozenEncoder,
    /** Per element of (d, g, g): μ and √(var + 1e-5). */
    readonly mean: Float64Array,
    readonly std: Float64Array,
  ) {
    const c = model.config, d = model.tokenDim;
    this.grid = encoder.grid;
    if (c.inputSize % this.grid !== 0) throw new Error(`latent.autoencoder ${file}: the decoder writes ${c.inputSize}² images from a ${this.grid}² token grid`);
    const E = d * this.grid * this.grid;
    if (mean.length !== E || std.length !== E) throw new Error(`latent.autoencoder ${file}: statistics of ${mean.length}/${std.length} elements for latents of ${d}×${this.grid}×${this.grid}`);
    for (let i = 0; i < E; i++) if (!(std[i] > 0)) throw new Error(`latent.autoencoder ${file}: std of element ${i} must be > 0, got ${std[i]}`);
    this.channels = d;
    this.inputChannels = c.inChannels;
    this.imageChannels = c.inChannels;
    this.factor = c.inputSize / this.grid;
  }

  side(imageSide: number, where = 'data.size'): number {
    if (imageSide !== this.grid * this.factor) throw new Error(`latent.autoencoder ${this.file} is an RAE of ${this.grid * this.factor}² images (a ${this.grid}² token grid); ${where} is ${imageSide}`);
    return this.grid;
  }

  /** Un-normalised latents (B, d, g, g) of images (B, C, H, W): the tokens without the norm's affine, channel-major. */
  rawLatents(x: Tensor): Float32Array {
    if (x.ndim !== 4 || x.shape[1] !== this.inputChannels) throw new Error(`latent.autoencoder ${this.file} encodes (B, ${this.inputChannels}, H, W) images, got ${fmtShape(x.shape)}`);
    this.side(x.shape[2], 'the image side');
    this.side(x.shape[3], 'the image width');
    const B = x.shape[0], per = x.size / B, d = this.channels, N = this.grid * this.grid;
    const out = new Float32Array(B * d * N);
    for (let s = 0; s < B; s += BATCH) {
      const m = Math.min(BATCH, B - s);
      noGrad(() => tidy(() => {
        const xs = tensor(x.data.subarray(s * per, (s + m) * per) as Float32Array, [m, ...x.shape.slice(1)]);
        const t = this.model.tokensOf(this.encoder.features(xs).patch); // (m, N, d)
        tokensToChannels(t.data, m, N, d, out, s * d * N);
      }));
    }
    return out;
  }

  encode(x: Tensor): Tensor {
    const raw = this.rawLatents(x);
    normaliseElements(raw, this.mean, this.std);
    const z = empty([x.shape[0], this.channels, this.grid, this.grid]);
    (z.data as Float32Array).set(raw);
    return z;
  }

  decode(latents: Float32Array, n: number, side: number): Float32Array {
    const d = this.channels, N = this.grid * this.grid;
    if (side !== this.grid) throw new Error(`latent space ${this.file}: latents of side ${side}, the RAE's token grid is ${this.grid}`);
    if (latents.length !== n * d * N) throw new Error(`latent space ${this.file}: ${latents.length} values for ${n} latents of ${d}×${side}×${side}`);
    const img = this.imageChannels * (side * this.factor) ** 2, out = new Float32Array(n * img);
    for (let s = 0; s < n; s += BATCH) {
      const m = Math.min(BATCH, n - s);
      const z = latents.slice(s * d * N, (s + m) * d * N);
      denormaliseElements(z, this.mean, this.std);
      const tokens = channelsToTokens(z, m, N, d);
      noGrad(() => tidy(() => { out.set(this.model.forward(tensor(tokens, [m, N, d])).data, s * img); }));
    }
    return out;
  }
}

/** The first n images of data (all when fewer), as one (n, C, H, W) tensor's data. */
function firstImages(data: ImageDataset, n: number): { x: Float32Array; n: number } {
  const count = Math.min(n, data.count), per = data.channels * data.height * data.width;
  const x = new Float32Array(count * per);
  for (let i = 0; i < count; i++) data.get(i, x, i * per);
  return { x, n: count };
}

/** The space of a stage-1 model and its encoder, with μ and var from the first `statImages` training images. */
export function raeLatentSpace(file: string, model: RaeDecoderModel, encoder: FrozenEncoder, data: ImageDataset, statImages: number): RaeLatentSpace {
  const probe = new RaeLatentSpace(file, model, encoder, new Float64Array(model.tokenDim * encoder.grid ** 2), new Float64Array(model.tokenDim * encoder.grid ** 2).fill(1));
  const { x, n } = firstImages(data, statImages);
  if (n < 2) throw new Error(`latent.autoencoder ${file}: the latent statistics need at least 2 training images, the dataset has ${data.count}`);
  const raw = probe.rawLatents(tensor(x, [n, data.channels, data.height, data.width]));
  const { mean, std } = elementStats(raw, n);
  return new RaeLatentSpace(file, model, encoder, mean, std);
}
