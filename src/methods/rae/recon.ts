// Reconstruction error of an autoencoder on a dataset, for RAE's stage 1 beside the shipped VAE
// (docs/methods.md, "RAE"): MSE over every pixel in the data range [−1, 1], and PSNR of the same
// images mapped to [0, 1]: 10·log10(1 / MSE₀₁) with MSE₀₁ = MSE / 4. Reconstructions are clamped
// to [−1, 1] first (what an image file would hold). Deterministic: RAE decodes its tokens with no
// noise (τ 0), the VAE its posterior mean.
// Not here: loading the models; `diffactor recon` (src/eval/reconstruction.ts) measures any
// latent.autoencoder file, a stage-1 checkpoint or a VAE, through its latent space.
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { noGrad } from '../../autograd/tape.ts';
import { tidy } from '../../tensor/tidy.ts';
import type { ImageDataset } from '../../data/index.ts';
import type { VAE } from '../../models/vae.ts';
import type { FrozenEncoder } from '../encoder.ts';
import type { RaeDecoderModel } from './model.ts';

export interface ReconError { images: number; mse: number; psnr: number }

/** A batch of images (B, C, H, W) in [−1, 1] → their reconstructions, same shape. */
export type Reconstruct = (x: Tensor) => Tensor;

/** RAE: decoder(LN_noaffine(encoder tokens)), no noise. */
export function raeReconstruct(model: RaeDecoderModel, encoder: FrozenEncoder): Reconstruct {
  return (x) => model.forward(model.tokensOf(encoder.features(x).patch));
}

/** A VAE: decode(posterior mean). */
export function vaeReconstruct(vae: VAE): Reconstruct {
  return (x) => vae.decode(vae.encode(x).mean);
}

/** The first `n` images of `data` (all when n exceeds its count), in batches of `batch`. */
export function reconstructionError(reconstruct: Reconstruct, data: ImageDataset, n: number, batch = 100): ReconError {
  if (!Number.isInteger(n) || n < 1) throw new Error(`reconstructionError: n must be a positive integer, got ${n}`);
  const count = Math.min(n, data.count), per = data.channels * data.height * data.width;
  let se = 0;
  for (let lo = 0; lo < count; lo += batch) {
    const b = Math.min(batch, count - lo), x = new Float32Array(b * per);
    for (let j = 0; j < b; j++) data.get(lo + j, x, j * per);
    se += tidy(() => noGrad(() => {
      const r = reconstruct(tensor(x, [b, data.channels, data.height, data.width]));
      if (r.size !== x.length) throw new Error(`reconstructionError: a reconstruction of ${r.size} values for ${x.length} pixels`);
      let s = 0;
      for (let i = 0; i < x.length; i++) { const d = Math.min(1, Math.max(-1, r.data[i])) - x[i]; s += d * d; }
      return s;
    }));
  }
  const mse = se / (count * per);
  return { images: count, mse, psnr: 10 * Math.log10(4 / mse) };
}
