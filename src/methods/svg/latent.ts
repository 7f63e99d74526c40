// SVG's latent space, as another spec's `latent.autoencoder` (Shi et al., "Latent Diffusion Model
// without Variational Autoencoder", arXiv 2510.15301; github.com/shiml20/SVG train_svg.py (features
// normalised per channel with the precomputed dinov3_sp_stats.pt) and dino_decoder.py (encode/decode);
// methods-b §6 "Diffusion"). A stage-1 run checkpoint (methods: [svg]) is the autoencoder:
//   encode(x) = (z − μ_c) / σ_c,  z = [h_enc ; match(h_res)] (B, N, d + r) laid out as (B, d + r, g, g)
//   decode(z_n) = decoder_EMA(z_n·σ_c + μ_c)
// μ_c and σ_c = √(var_c + 1e-5) are PER CHANNEL (over images and tokens), in float64, from the first
// svg.stat_images training images of the checkpoint spec's dataset, in order: deterministic, so every
// actor that opens the space computes the same numbers (var divided by the count).
// The residual's distribution matching uses the statistics of the batch being encoded (SVG: batch
// statistics at inference too), so a latent depends on the other images of its encoding batch:
// encode() matches over consecutive groups of 64 of the images it is given (the latent cache hands it
// fixed chunks, so cached latents are reproducible). No mask at encoding (eval mode).
// Not here: the dispatch by file kind (build/latentSpace.ts), the stage-1 model (model.ts).
import { empty, tensor, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { noGrad } from '../../autograd/tape.ts';
import { tidy } from '../../tensor/tidy.ts';
import type { ImageDataset } from '../../data/index.ts';
import type { FrozenEncoder } from '../encoder.ts';
import type { LatentSpace } from '../method.ts';
import type { SvgAutoencoderModel } from './model.ts';

/** ε under the square root of the per-channel normalisation. */
export const SVG_NORM_EPS = 1e-5;

/** Images per matching batch (and model batch) when encoding; decoding results do not depend on it. */
export const SVG_ENCODE_BATCH = 64;

/** Per-channel mean and √(var + eps) of channel-major latents (n, C, P) (float64, two passes, var divided by n·P). */
export function channelStats(z: Float32Array, n: number, C: number, eps = SVG_NORM_EPS): { mean: Float64Array; std: Float64Array } {
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

export class SvgLatentSpace implements LatentSpace {
  readonly channels: number;
  readonly inputChannels: number;
  readonly imageChannels: number;
  readonly factor: number;
  /** Token grid side g (the encoder's). */
  readonly grid: number;

  constructor(
    readonly file: string,
    /** The stage-1 model holding the EMA residual branch and decoder (eval mode). */
    readonly model: SvgAutoencoderModel,
    readonly encoder: FrozenEncoder,
    /** Per channel of the d + r: μ and √(var + 1e-5). */
    readonly mean: Float64Array,
    readonly std: Float64Array,
  ) {
    const c = model.config, C = model.latentChannels;
    this.grid = encoder.grid;
    if (c.inputSize !== this.grid * c.patchSize) throw new Error(`latent.autoencoder ${file}: the decoder writes ${c.inputSize}² images at ${c.patchSize} pixels per token, the encoder's grid is ${this.grid}²`);
    if (mean.length !== C || std.length !== C) throw new Error(`latent.autoencoder ${file}: statistics of ${mean.length}/${std.length} channels for latents of ${C}`);
    for (let i = 0; i < C; i++) if (!(std[i] > 0)) throw new Error(`latent.autoencoder ${file}: std of channel ${i} must be > 0, got ${std[i]}`);
    this.channels = C;
    this.inputChannels = c.inChannels;
    this.imageChannels = c.inChannels;
    this.factor = c.patchSize;
  }

  side(imageSide: number, where = 'data.size'): number {
    if (imageSide !== this.grid * this.factor) throw new Error(`latent.autoencoder ${this.file} is an SVG autoencoder of ${this.grid * this.factor}² images (a ${this.grid}² token grid); ${where} is ${imageSide}`);
    return this.grid;
  }

  /** Un-normalised latents (B, d + r, g, g) of images (B, C, H, W), matched over groups of 64. */
  rawLatents(x: Tensor): Float32Array {
    if (x.ndim !== 4 || x.shape[1] !== this.inputChannels) throw new Error(`latent.autoencoder ${this.file} encodes (B, ${this.inputChannels}, H, W) images, got ${fmtShape(x.shape)}`);
    this.side(x.shape[2], 'the image side');
    this.side(x.shape[3], 'the image width');
    const B = x.shape[0], per = x.size / B, C = this.channels, N = this.grid * this.grid;
    const out = new Float32Array(B * C * N);
    for (let s = 0; s < B; s += SVG_ENCODE_BATCH) {
      const m = Math.min(SVG_ENCODE_BATCH, B - s);
      noGrad(() => tidy(() => {
        const xs = tensor(x.data.subarray(s * per, (s + m) * per) as Float32Array, [m, ...x.shape.slice(1)]);
        const z = this.model.latent(this.encoder.features(xs).patch, xs, null).data; // (m, N, C)
        for (let b = 0; b < m; b++) for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) out[((s + b) * C + c) * N + n] = z[(b * N + n) * C + c];
      }));
    }
    return out;
  }

  encode(x: Tensor): Tensor {
    const raw = this.rawLatents(x);
    normaliseChannels(raw, this.grid * this.grid, this.mean, this.std);
    const z = empty([x.shape[0], this.channels, this.grid, this.grid]);
    (z.data as Float32Array).set(raw);
    return z;
  }

  decode(latents: Float32Array, n: number, side: number): Float32Array {
    const C = this.channels, N = this.grid * this.grid;
    if (side !== this.grid) throw new Error(`latent space ${this.file}: latents of side ${side}, the SVG token grid is ${this.grid}`);
    if (latents.length !== n * C * N) throw new Error(`latent space ${this.file}: ${latents.length} values for ${n} latents of ${C}×${side}×${side}`);
    const img = this.imageChannels * (side * this.factor) ** 2, out = new Float32Array(n * img);
    for (let s = 0; s < n; s += SVG_ENCODE_BATCH) {
      const m = Math.min(SVG_ENCODE_BATCH, n - s);
      const z = latents.slice(s * C * N, (s + m) * C * N);
      normaliseChannels(z, N, this.mean, this.std, true);
      const tokens = new Float32Array(z.length);
      for (let b = 0; b < m; b++) for (let c = 0; c < C; c++) for (let q = 0; q < N; q++) tokens[(b * N + q) * C + c] = z[(b * C + c) * N + q];
      noGrad(() => tidy(() => { out.set(this.model.forward(tensor(tokens, [m, N, C])).data, s * img); }));
    }
    return out;
  }
}

/** The space of a stage-1 model and its encoder, with μ_c, σ_c from the first `statImages` training images. */
export function svgLatentSpace(file: string, model: SvgAutoencoderModel, encoder: FrozenEncoder, data: ImageDataset, statImages: number): SvgLatentSpace {
  const C = model.latentChannels;
  const probe = new SvgLatentSpace(file, model, encoder, new Float64Array(C), new Float64Array(C).fill(1));
  const n = Math.min(statImages, data.count), per = data.channels * data.height * data.width;
  if (n < 2) throw new Error(`latent.autoencoder ${file}: the latent statistics need at least 2 training images, the dataset has ${data.count}`);
  const x = new Float32Array(n * per);
  for (let i = 0; i < n; i++) data.get(i, x, i * per);
  const raw = probe.rawLatents(tensor(x, [n, data.channels, data.height, data.width]));
  const { mean, std } = channelStats(raw, n, C);
  return new SvgLatentSpace(file, model, encoder, mean, std);
}
