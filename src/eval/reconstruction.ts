// Reconstruction error of a frozen latent space (`diffactor recon`): whatever a spec's
// `latent.autoencoder` can name — a VAE file such as the stand-in, an RAE or SVG stage-1 run
// checkpoint — measured the same way: decode(encode(x)) of the first N test images, MSE in [−1, 1]
// and PSNR in [0, 1] (methods/rae/recon.ts reconstructionError). The round trip is the one a
// latent-space run sees: the latents are the normalised ones the model is trained on, so a space's
// normalisation is part of what is measured (it is invertible; only rounding remains of it).
// Issue 13 asks for RAE's reconstruction beside the shipped VAE's; SVG's claim ("no VAE needed")
// rests on the same number.
import { fromData, type Tensor } from '../tensor/tensor.ts';
import { openDataset } from '../data/open.ts';
import { loadLatentSpace, type LatentSpace } from '../build/latentSpace.ts';
import { reconstructionError, type ReconError, type Reconstruct } from '../methods/rae/recon.ts';

/** A latent space as a reconstruction: images (B, C, H, W) → decode(encode(images)), same shape. */
export function latentSpaceReconstruct(space: LatentSpace): Reconstruct {
  return (x: Tensor) => {
    if (x.ndim !== 4 || x.shape[2] !== x.shape[3]) throw new Error(`latent space ${space.file}: reconstructs square images (B, C, S, S), got [${x.shape.join(', ')}]`);
    const z = space.encode(x), n = x.shape[0];
    const img = space.decode(Float32Array.from(z.data as Float32Array), n, z.shape[2]);
    return fromData(img, [n, space.imageChannels, x.shape[2], x.shape[3]]);
  };
}

export interface ReconCliOptions {
  /** Comma-separated autoencoder files. */
  autoencoder: string;
  data?: string;
  size?: number;
  images: number;
  json?: boolean;
}

export interface ReconRow extends ReconError { file: string; channels: number; factor: number }

/** Measure each file on the same test images; one line (or JSON line) per file. */
export function reconCli(o: ReconCliOptions): ReconRow[] {
  const files = o.autoencoder.split(',').map((f) => f.trim()).filter(Boolean);
  if (files.length === 0) throw new Error('recon: --autoencoder needs at least one file (a VAE file or an autoencoder run\'s checkpoint)');
  if (!Number.isInteger(o.images) || o.images < 1) throw new Error(`recon: --images ${o.images}: expected a positive integer`);
  const dataset = o.data ?? 'fashion-mnist', size = o.size ?? 32;
  const test = openDataset(dataset, { split: 'test', size });
  const rows: ReconRow[] = [];
  for (const file of files) {
    const space = loadLatentSpace(file);
    const r = { file, channels: space.channels, factor: space.factor, ...reconstructionError(latentSpaceReconstruct(space), test, o.images) };
    rows.push(r);
    if (o.json) console.log(JSON.stringify({ ...r, data: dataset, size }));
    else console.log(`${file}: ${r.channels} latent channels at 1/${r.factor} of the side; ${r.images} ${dataset} test images at ${size} px: MSE ${r.mse.toFixed(5)} (in [−1, 1]), PSNR ${r.psnr.toFixed(2)} dB`);
  }
  return rows;
}
