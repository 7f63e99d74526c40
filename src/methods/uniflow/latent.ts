// UniFlow's tokenizer as another spec's `latent.autoencoder` (Yue et al., arXiv 2510.10575; the paper
// trains its generator in the compact latent z; methods-b §9): a tokenizer run checkpoint
// (methods: [uniflow]) is the autoencoder, its EMA weights frozen:
//   encode(x) = (z − μ) / √(var + 1e-5),  z = MLP(merge2×2(E_U(x) tokens)) (B, (g/2)², zc) laid out (B, zc, g/2, g/2)
//   decode(z_n) = Euler decode of c = GTBs(P_up(z_n·√(var + 1e-5) + μ)) from ε, in decode_steps steps
//                 (1: x̂ = ε − v_θ(ε, 1, c), the paper's one step)
// μ and var per element over the first uniflow.stat_images training images (RAE's normalisation,
// rae/latent.ts, reused). Ours: ε of image i is N(0, I) drawn from a seed hashed from the bits of its
// own normalised latent, so decode is a pure function of the latent — the same latent gives the same
// image whichever batch, call or actor decodes it.
// Not here: the dispatch by file kind (build/latentSpace.ts), the model (model.ts).
import { empty, tensor, type Tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { noGrad } from '../../autograd/tape.ts';
import { permute, reshape } from '../../autograd/ops/index.ts';
import { tidy } from '../../tensor/tidy.ts';
import type { ImageDataset } from '../../data/index.ts';
import type { LatentSpace } from '../method.ts';
import { denormaliseElements, elementStats, normaliseElements } from '../rae/latent.ts';
import type { UniFlowModel } from './model.ts';

/** Images per model batch when encoding or decoding (memory bound; results do not depend on it). */
const BATCH = 64;

/** FNV-1a over the float32 bit patterns of v: the seed of the decode noise of one latent. */
export function latentSeed(v: Float32Array): number {
  const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < bits.length; i++) {
    for (let k = 0; k < 32; k += 8) { h ^= (bits[i] >>> k) & 0xff; h = Math.imul(h, 0x01000193) >>> 0; }
  }
  return h & 0x7fffffff;
}

export class UniFlowLatentSpace implements LatentSpace {
  readonly channels: number;
  readonly inputChannels: number;
  readonly imageChannels: number;
  readonly factor: number;
  /** Side of z's grid, g/2. */
  readonly grid: number;

  constructor(
    readonly file: string,
    /** The tokenizer with its EMA weights, eval mode. */
    readonly model: UniFlowModel,
    /** Per element of (zc, g/2, g/2): μ and √(var + 1e-5). */
    readonly mean: Float64Array,
    readonly std: Float64Array,
    readonly decodeSteps = 1,
  ) {
    const c = model.config, zc = model.decoder.config.latentChannels;
    this.grid = model.grid / 2;
    const E = zc * this.grid * this.grid;
    if (mean.length !== E || std.length !== E) throw new Error(`latent.autoencoder ${file}: statistics of ${mean.length}/${std.length} elements for latents of ${zc}×${this.grid}×${this.grid}`);
    for (let i = 0; i < E; i++) if (!(std[i] > 0)) throw new Error(`latent.autoencoder ${file}: std of element ${i} must be > 0, got ${std[i]}`);
    if (!Number.isInteger(decodeSteps) || decodeSteps < 1) throw new Error(`latent.autoencoder ${file}: decode steps must be a positive integer, got ${decodeSteps}`);
    this.channels = zc;
    this.inputChannels = c.inChannels;
    this.imageChannels = c.inChannels;
    this.factor = c.inputSize / this.grid;
  }

  side(imageSide: number, where = 'data.size'): number {
    if (imageSide !== this.grid * this.factor) throw new Error(`latent.autoencoder ${this.file} is a UniFlow tokenizer of ${this.grid * this.factor}² images (z on a ${this.grid}² grid); ${where} is ${imageSide}`);
    return this.grid;
  }

  /** Un-normalised z (B, zc, h, h) of images (B, C, H, W), channel-major. */
  rawLatents(x: Tensor): Float32Array {
    if (x.ndim !== 4 || x.shape[1] !== this.inputChannels) throw new Error(`latent.autoencoder ${this.file} encodes (B, ${this.inputChannels}, H, W) images, got ${fmtShape(x.shape)}`);
    this.side(x.shape[2], 'the image side');
    this.side(x.shape[3], 'the image width');
    const B = x.shape[0], per = x.size / B, h = this.grid, zc = this.channels, out = new Float32Array(B * zc * h * h);
    for (let s = 0; s < B; s += BATCH) {
      const m = Math.min(BATCH, B - s);
      noGrad(() => tidy(() => {
        const xs = tensor(x.data.subarray(s * per, (s + m) * per) as Float32Array, [m, ...x.shape.slice(1)]);
        const z = this.model.decoder.latent(this.model.encode(xs).tokens); // (m, h², zc)
        out.set(permute(reshape(z, [m, h, h, zc]), [0, 3, 1, 2]).data, s * zc * h * h);
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
    const zc = this.channels, h = this.grid, E = zc * h * h, c = this.imageChannels, s2 = side * this.factor;
    if (side !== h) throw new Error(`latent space ${this.file}: latents of side ${side}, the tokenizer's z grid is ${h}`);
    if (latents.length !== n * E) throw new Error(`latent space ${this.file}: ${latents.length} values for ${n} latents of ${zc}×${side}×${side}`);
    const img = c * s2 * s2, out = new Float32Array(n * img);
    for (let s = 0; s < n; s += BATCH) {
      const m = Math.min(BATCH, n - s);
      const zn = latents.slice(s * E, (s + m) * E), eps = new Float32Array(m * img);
      for (let i = 0; i < m; i++) eps.set(new Rng(latentSeed(zn.subarray(i * E, (i + 1) * E))).normalArray(img), i * img);
      denormaliseElements(zn, this.mean, this.std);
      noGrad(() => tidy(() => {
        const z = reshape(permute(tensor(zn, [m, zc, h, h]), [0, 2, 3, 1]), [m, h * h, zc]); // (m, h², zc)
        const cond = this.model.decoder.condition(z);
        out.set(this.model.decoder.decode(cond, tensor(eps, [m, c, s2, s2]), this.decodeSteps).data, s * img);
      }));
    }
    return out;
  }
}

/** The space of a tokenizer (EMA, eval) with μ and var from the first `statImages` training images. */
export function uniflowLatentSpace(file: string, model: UniFlowModel, data: ImageDataset, statImages: number, decodeSteps = 1): UniFlowLatentSpace {
  const E = model.decoder.config.latentChannels * (model.grid / 2) ** 2;
  const probe = new UniFlowLatentSpace(file, model, new Float64Array(E), new Float64Array(E).fill(1), decodeSteps);
  const count = Math.min(statImages, data.count), per = data.channels * data.height * data.width;
  if (count < 2) throw new Error(`latent.autoencoder ${file}: the latent statistics need at least 2 training images, the dataset has ${data.count}`);
  const x = new Float32Array(count * per);
  for (let i = 0; i < count; i++) data.get(i, x, i * per);
  const { mean, std } = elementStats(probe.rawLatents(tensor(x, [count, data.channels, data.height, data.width])), count);
  return new UniFlowLatentSpace(file, model, mean, std, decodeSteps);
}
