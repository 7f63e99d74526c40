// A frozen latent space: the space a spec's model works in when `latent.autoencoder` names a frozen
// autoencoder file. What the file is decides the kind (loadLatentSpace):
//   - a diffusers-layout KL-VAE (such as `diffactor standin vae` writes): the training images are
//     encoded to the posterior mean and normalised per channel, (z − mean_c)/std_c, with the
//     statistics the file carries (`latents_mean`/`latents_std` metadata; otherwise its
//     shift/scaling factors, as SD-VAE: (z − shift)·scale); samples are de-normalised and decoded
//     (VaeLatentSpace below);
//   - a diffactor run checkpoint whose spec lists a method with an `autoencoder` hook (RAE stage 1):
//     that method builds the space from the checkpoint's EMA model, its spec's frozen encoder and
//     training set (methods/method.ts AutoencoderContext). This file names no method.
// Nothing of it trains, so every actor that needs it (Data, Evaluator, the grid, `sample`) builds
// the same one from the spec: the file is the whole state, and its sha256 is one of the run's inputs.
// The posterior mean, not a sample: the encoding of an image is fixed, as RAE's and SVG's
// deterministic encoders are, so a run is determined by its spec and seed without one more stream.
// Not here: a jointly trained VAE (REPA-E: methods/repa-e, JointVae), whose latents move.
import { existsSync, statSync } from 'node:fs';
import { readSafetensors } from '../io/safetensors.ts';
import { noGrad } from '../autograd/tape.ts';
import { tidy } from '../tensor/tidy.ts';
import { empty, fromData, type Tensor } from '../tensor/tensor.ts';
import { fmtShape } from '../tensor/shape.ts';
import { Rng } from '../tensor/rng.ts';
import { normalizeSdVaeKeys, inferSdVaeConfig } from '../models/sdVae.ts';
import { VAE, vaeFactor } from '../models/vae.ts';
import type { RunSpec } from '../spec/schema.ts';
import type { LatentSpace, SpecView } from '../methods/method.ts';
import { CHECKPOINT_FORMAT, WEIGHTS_FORMAT, loadCheckpoint } from './checkpoint.ts';
import { buildEncoder, methodsOf, samplingModel } from './parts.ts';
import { openTrainData } from './setup.ts';

export type { LatentSpace };

/** Images per model batch when encoding or decoding (memory bound; the result does not depend on it). */
const BATCH = 64;

/** A diffusers-layout KL-VAE's latent space: posterior means normalised per channel. */
export class VaeLatentSpace implements LatentSpace {
  /** Latent channels, the image channels the encoder reads and the decoder writes, and image side / latent side. */
  readonly channels: number;
  readonly inputChannels: number;
  readonly imageChannels: number;
  readonly factor: number;

  constructor(
    /** The autoencoder file (what error messages name). */
    readonly file: string,
    readonly vae: VAE,
    /** Per-channel normalisation: diffusion sees (z − mean)/std. */
    readonly mean: Float64Array,
    readonly std: Float64Array,
  ) {
    const c = vae.config;
    if (mean.length !== c.latentChannels || std.length !== c.latentChannels) {
      throw new Error(`${file}: latent statistics have ${mean.length}/${std.length} entries for ${c.latentChannels} latent channels`);
    }
    for (let i = 0; i < std.length; i++) if (!(std[i] > 0)) throw new Error(`${file}: latent std of channel ${i} must be > 0, got ${std[i]}`);
    this.channels = c.latentChannels;
    this.inputChannels = c.inChannels;
    this.imageChannels = c.outChannels;
    this.factor = vaeFactor(c);
  }

  /** The latent grid's side for images of side `imageSide` (which the factor must divide). */
  side(imageSide: number, where = 'data.size'): number {
    if (imageSide % this.factor !== 0) throw new Error(`latent.autoencoder ${this.file} downsamples by ${this.factor}; ${where} ${imageSide} is not a multiple of it`);
    return imageSide / this.factor;
  }

  /**
   * Images (B, C, H, W) in [-1, 1] → normalised latents (B, L, H/f, W/f), computed without a tape,
   * in a pooled (shareable) buffer: call inside the caller's tidy, as a loader batch.
   */
  encode(x: Tensor): Tensor {
    const c = this.vae.config;
    if (x.ndim !== 4 || x.shape[1] !== c.inChannels) {
      throw new Error(`latent.autoencoder ${this.file} encodes (B, ${c.inChannels}, H, W) images, got ${fmtShape(x.shape)}`);
    }
    const B = x.shape[0], h = this.side(x.shape[2], 'the image side'), w = this.side(x.shape[3], 'the image width');
    const per = x.size / B, lat = this.channels * h * w;
    const z = empty([B, this.channels, h, w]), out = z.data as Float32Array;
    for (let s = 0; s < B; s += BATCH) {
      const m = Math.min(BATCH, B - s);
      noGrad(() => tidy(() => {
        const mean = this.vae.encode(fromData(x.data.subarray(s * per, (s + m) * per) as Float32Array, [m, ...x.shape.slice(1)])).mean;
        out.set(mean.data, s * lat);
      }));
    }
    normalise(out, this.mean, this.std, h * w);
    return z;
  }

  /** n normalised latents (n, L, side, side) → images (n, C, side·f, side·f), decoded in batches. */
  decode(latents: Float32Array, n: number, side: number): Float32Array {
    const per = this.channels * side * side;
    if (latents.length !== n * per) throw new Error(`latent space ${this.file}: ${latents.length} values for ${n} latents of ${this.channels}×${side}×${side}`);
    const img = this.imageChannels * (side * this.factor) ** 2;
    const out = new Float32Array(n * img);
    for (let s = 0; s < n; s += BATCH) {
      const m = Math.min(BATCH, n - s);
      const z = latents.slice(s * per, (s + m) * per);
      denormalise(z, this.mean, this.std, side * side);
      noGrad(() => tidy(() => { out.set(this.vae.decode(fromData(z, [m, this.channels, side, side])).data, s * img); }));
    }
    return out;
  }
}

/** In place, per channel of (N, C, hw): (z − mean_c)/std_c. */
export function normalise(z: Float32Array, mean: ArrayLike<number>, std: ArrayLike<number>, hw: number): void {
  const C = mean.length;
  for (let i = 0; i < z.length; i++) {
    const c = Math.floor(i / hw) % C;
    z[i] = (z[i] - mean[c]) / std[c];
  }
}

/** The inverse of normalise: z·std_c + mean_c. */
export function denormalise(z: Float32Array, mean: ArrayLike<number>, std: ArrayLike<number>, hw: number): void {
  const C = mean.length;
  for (let i = 0; i < z.length; i++) {
    const c = Math.floor(i / hw) % C;
    z[i] = z[i] * std[c] + mean[c];
  }
}

function numbers(v: string | undefined, what: string, file: string): Float64Array | null {
  if (v === undefined) return null;
  let a: unknown;
  try { a = JSON.parse(v); } catch { a = null; }
  if (!Array.isArray(a) || !a.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new Error(`${file}: metadata ${what} must be a JSON array of numbers, got ${v.slice(0, 60)}`);
  }
  return Float64Array.from(a as number[]);
}

/** Read a diffusers-layout VAE file into a frozen latent space (eval mode). */
export function loadVaeLatentSpace(file: string): VaeLatentSpace {
  if (!existsSync(file)) throw new Error(`latent.autoencoder: ${file} not found (a diffusers-layout VAE file, e.g. specs/standins/vae-builtin.safetensors or one written by \`npx diffactor standin vae\`)`);
  const { tensors, metadata } = readSafetensors(file);
  return vaeSpace(file, tensors, metadata);
}

function vaeSpace(file: string, tensors: Map<string, Tensor>, metadata: Record<string, string>): VaeLatentSpace {
  const sd = normalizeSdVaeKeys(tensors);
  let vae: VAE;
  try {
    const config = inferSdVaeConfig(sd, metadata);
    vae = new VAE(config, new Rng(0));
    vae.loadStateDict(sd, true);
  } catch (e) {
    throw new Error(`latent.autoencoder ${file}: not a diffusers-layout KL-VAE file (${(e as Error).message})`);
  }
  vae.eval();
  for (const [, p] of vae.namedParameters()) p.requiresGrad = false;
  const c = vae.config, L = c.latentChannels;
  const mean = numbers(metadata.latents_mean, 'latents_mean', file) ?? new Float64Array(L).fill(c.shiftFactor);
  const std = numbers(metadata.latents_std, 'latents_std', file) ?? new Float64Array(L).fill(1 / c.scalingFactor);
  return new VaeLatentSpace(file, vae, mean, std);
}

/**
 * A run checkpoint's latent space: the method of its spec that provides `autoencoder` builds it
 * from the checkpoint's EMA model (eval mode, frozen) and the checkpoint spec's encoder and data.
 */
function checkpointSpace(file: string): LatentSpace {
  let c;
  try { c = loadCheckpoint(file); } catch (e) { throw new Error(`latent.autoencoder ${file}: ${(e as Error).message}`); }
  const m = methodsOf(c.spec).find((a) => a.def.autoencoder);
  if (!m) throw new Error(`latent.autoencoder ${file}: a checkpoint of a run with methods [${c.spec.methods.join(', ')}], none of which is an autoencoder (e.g. rae with rae.stage decoder)`);
  const spec = c.spec, config = c.config;
  const model = samplingModel(spec, config, c.ema);
  model.eval();
  for (const p of model.parameters()) p.requiresGrad = false;
  return m.def.autoencoder!(m.s, {
    file, spec: spec as unknown as SpecView, config, model,
    trainingSet: () => {
      const data = openTrainData(spec);
      return { data, encoder: buildEncoder(spec, data, config) };
    },
  });
}

/** Read an autoencoder file into a frozen latent space (eval mode): a VAE file or a run checkpoint. */
export function loadLatentSpace(file: string): LatentSpace {
  if (!existsSync(file)) throw new Error(`latent.autoencoder: ${file} not found (a diffusers-layout VAE file, e.g. specs/standins/vae-builtin.safetensors or one written by \`npx diffactor standin vae\`, or a run checkpoint of an autoencoder method: train that run first, as the spec's header says)`);
  const { tensors, metadata } = readSafetensors(file);
  if (metadata.format === CHECKPOINT_FORMAT || metadata.format === WEIGHTS_FORMAT) return checkpointSpace(file);
  return vaeSpace(file, tensors, metadata);
}

const loaded = new Map<string, LatentSpace>();

/** The spec's frozen latent space, or null when its model works on the images themselves (one per file and process). */
export function latentSpaceOf(spec: Pick<RunSpec, 'latent'>): LatentSpace | null {
  const file = spec.latent?.autoencoder;
  if (!file) return null;
  // Keyed by the file's size and time too: a file rewritten in place (a retrained stand-in) is read again.
  const st = existsSync(file) ? statSync(file) : null;
  const key = `${file}\0${st?.size}\0${st?.mtimeMs}`;
  let s = loaded.get(key);
  if (!s) {
    s = loadLatentSpace(file);
    loaded.set(key, s);
  }
  return s;
}
