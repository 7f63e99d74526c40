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
// Not here: the frame shared with the other token spaces (../tokenLatent.ts), the dispatch by file
// kind (build/latentSpace.ts), the stage-1 model (model.ts).
import type { Tensor } from '../../tensor/tensor.ts';
import type { ImageDataset } from '../../data/index.ts';
import type { FrozenEncoder } from '../encoder.ts';
import { TokenLatentSpace, fitTokenLatentSpace } from '../tokenLatent.ts';
import type { RaeDecoderModel } from './model.ts';

export class RaeLatentSpace extends TokenLatentSpace {
  constructor(
    file: string,
    /** The stage-1 model holding the EMA decoder and the encoder's norm affine (eval mode). */
    readonly model: RaeDecoderModel,
    readonly encoder: FrozenEncoder,
    /** Per element of (d, g, g): μ and √(var + 1e-5). */
    mean: Float64Array,
    std: Float64Array,
  ) {
    const c = model.config;
    super(file, { channels: model.tokenDim, grid: encoder.grid, imageChannels: c.inChannels, imageSide: c.inputSize, kind: 'an RAE', gridName: 'the RAE\'s token grid', batch: 64 }, 'element', mean, std);
  }

  /** The tokens without the norm's affine. */
  protected tokens(xs: Tensor): Tensor {
    return this.model.tokensOf(this.encoder.features(xs).patch);
  }

  protected images(tokens: Tensor): Tensor {
    return this.model.forward(tokens);
  }
}

/** The space of a stage-1 model and its encoder, with μ and var from the first `statImages` training images. */
export function raeLatentSpace(file: string, model: RaeDecoderModel, encoder: FrozenEncoder, data: ImageDataset, statImages: number): RaeLatentSpace {
  return fitTokenLatentSpace(file, 'element', model.tokenDim * encoder.grid ** 2, data, statImages, (mean, std) => new RaeLatentSpace(file, model, encoder, mean, std));
}
