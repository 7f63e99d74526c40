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
// Not here: the frame shared with the other token spaces (../tokenLatent.ts), the dispatch by file
// kind (build/latentSpace.ts), the stage-1 model (model.ts).
import type { Tensor } from '../../tensor/tensor.ts';
import type { ImageDataset } from '../../data/index.ts';
import type { FrozenEncoder } from '../encoder.ts';
import { TokenLatentSpace, fitTokenLatentSpace } from '../tokenLatent.ts';
import type { SvgAutoencoderModel } from './model.ts';

/** Images per matching batch (and model batch) when encoding; decoding results do not depend on it. */
export const SVG_ENCODE_BATCH = 64;

export class SvgLatentSpace extends TokenLatentSpace {
  constructor(
    file: string,
    /** The stage-1 model holding the EMA residual branch and decoder (eval mode). */
    readonly model: SvgAutoencoderModel,
    readonly encoder: FrozenEncoder,
    /** Per channel of the d + r: μ and √(var + 1e-5). */
    mean: Float64Array,
    std: Float64Array,
  ) {
    const c = model.config;
    if (c.inputSize !== encoder.grid * c.patchSize) throw new Error(`latent.autoencoder ${file}: the decoder writes ${c.inputSize}² images at ${c.patchSize} pixels per token, the encoder's grid is ${encoder.grid}²`);
    super(file, { channels: model.latentChannels, grid: encoder.grid, imageChannels: c.inChannels, imageSide: c.inputSize, kind: 'an SVG autoencoder', gridName: 'the SVG token grid', batch: SVG_ENCODE_BATCH }, 'channel', mean, std);
  }

  /** [h_enc ; match(h_res)], the residual matched over this group of images, no mask (eval). */
  protected tokens(xs: Tensor): Tensor {
    return this.model.latent(this.encoder.features(xs).patch, xs, null);
  }

  protected images(tokens: Tensor): Tensor {
    return this.model.forward(tokens);
  }
}

/** The space of a stage-1 model and its encoder, with μ_c, σ_c from the first `statImages` training images. */
export function svgLatentSpace(file: string, model: SvgAutoencoderModel, encoder: FrozenEncoder, data: ImageDataset, statImages: number): SvgLatentSpace {
  return fitTokenLatentSpace(file, 'channel', model.latentChannels, data, statImages, (mean, std) => new SvgLatentSpace(file, model, encoder, mean, std));
}
