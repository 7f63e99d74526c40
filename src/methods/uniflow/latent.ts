// UniFlow's tokenizer as another spec's `latent.autoencoder` (Yue et al., arXiv 2510.10575; the paper
// trains its generator in the compact latent z; methods-b §9): a tokenizer run checkpoint
// (methods: [uniflow]) is the autoencoder, its EMA weights frozen:
//   encode(x) = (z − μ) / √(var + 1e-5),  z = MLP(merge2×2(E_U(x) tokens)) (B, (g/2)², zc) laid out (B, zc, g/2, g/2)
//   decode(z_n) = Euler decode of c = GTBs(P_up(z_n·√(var + 1e-5) + μ)) from ε, in decode_steps steps
//                 (1: x̂ = ε − v_θ(ε, 1, c), the paper's one step)
// μ and var per element over the first uniflow.stat_images training images (RAE's normalisation,
// ../tokenLatent.ts). Ours: ε of image i is N(0, I) drawn from a seed hashed from the bits of its
// own normalised latent, so decode is a pure function of the latent — the same latent gives the same
// image whichever batch, call or actor decodes it.
// Not here: the frame shared with the other token spaces (../tokenLatent.ts), the dispatch by file
// kind (build/latentSpace.ts), the model (model.ts).
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import type { ImageDataset } from '../../data/index.ts';
import { TokenLatentSpace, fitTokenLatentSpace } from '../tokenLatent.ts';
import type { UniFlowModel } from './model.ts';

/** FNV-1a over the float32 bit patterns of v: the seed of the decode noise of one latent. */
export function latentSeed(v: Float32Array): number {
  const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < bits.length; i++) {
    for (let k = 0; k < 32; k += 8) { h ^= (bits[i] >>> k) & 0xff; h = Math.imul(h, 0x01000193) >>> 0; }
  }
  return h & 0x7fffffff;
}

export class UniFlowLatentSpace extends TokenLatentSpace {
  constructor(
    file: string,
    /** The tokenizer with its EMA weights, eval mode. */
    readonly model: UniFlowModel,
    /** Per element of (zc, g/2, g/2): μ and √(var + 1e-5). */
    mean: Float64Array,
    std: Float64Array,
    readonly decodeSteps = 1,
  ) {
    const c = model.config;
    super(file, { channels: model.decoder.config.latentChannels, grid: model.grid / 2, imageChannels: c.inChannels, imageSide: c.inputSize, kind: 'a UniFlow tokenizer', gridName: 'the tokenizer\'s z grid', batch: 64 }, 'element', mean, std);
    if (!Number.isInteger(decodeSteps) || decodeSteps < 1) throw new Error(`latent.autoencoder ${file}: decode steps must be a positive integer, got ${decodeSteps}`);
  }

  /** z = MLP(merge2×2(E_U(x) tokens)), (m, (g/2)², zc). */
  protected tokens(xs: Tensor): Tensor {
    return this.model.decoder.latent(this.model.encode(xs).tokens);
  }

  /** The Euler decode from ε, ε of each image seeded by its own normalised latent's bits. */
  protected images(tokens: Tensor, normalised: Float32Array, m: number): Tensor {
    const c = this.imageChannels, s2 = this.grid * this.factor, img = c * s2 * s2, E = this.channels * this.grid * this.grid;
    const eps = new Float32Array(m * img);
    for (let i = 0; i < m; i++) eps.set(new Rng(latentSeed(normalised.subarray(i * E, (i + 1) * E))).normalArray(img), i * img);
    return this.model.decoder.decode(this.model.decoder.condition(tokens), tensor(eps, [m, c, s2, s2]), this.decodeSteps);
  }
}

/** The space of a tokenizer (EMA, eval) with μ and var from the first `statImages` training images. */
export function uniflowLatentSpace(file: string, model: UniFlowModel, data: ImageDataset, statImages: number, decodeSteps = 1): UniFlowLatentSpace {
  const E = model.decoder.config.latentChannels * (model.grid / 2) ** 2;
  return fitTokenLatentSpace(file, 'element', E, data, statImages, (mean, std) => new UniFlowLatentSpace(file, model, mean, std, decodeSteps));
}
