// `diffactor recon` (src/eval/reconstruction.ts): any latent.autoencoder file's round trip on test
// images. The VAE stand-in through the latent-space path (normalised latents) against the VAE's
// own decode(posterior mean) (methods/rae/recon.ts vaeReconstruct, no normalisation); a latent space
// with a known round-trip error; the CLI's errors.
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDataset } from '../../src/data/open.ts';
import { loadLatentSpace, type LatentSpace } from '../../src/build/latentSpace.ts';
import { loadSdVae } from '../../src/models/sdVae.ts';
import { reconstructionError, vaeReconstruct } from '../../src/methods/rae/recon.ts';
import { latentSpaceReconstruct, reconCli } from '../../src/eval/reconstruction.ts';
import { fromData, type Tensor } from '../../src/tensor/tensor.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const vaeFile = path.join(root, 'specs/standins/vae-builtin.safetensors');

describe('recon: reconstruction error of a frozen latent space', () => {
  it('the VAE stand-in as a latent space reconstructs as the VAE itself does (decode of the posterior mean)', () => {
    const test = openDataset('builtin', { split: 'test', size: 32 });
    const space = latentSpaceReconstruct(loadLatentSpace(vaeFile));
    const direct = vaeReconstruct(loadSdVae(vaeFile).eval());
    const a = reconstructionError(space, test, 12, 5), b = reconstructionError(direct, test, 12, 5);
    expect(a.images).toBe(12);
    expect(a.mse).toBeGreaterThan(0);
    expect(Math.abs(a.mse - b.mse) / b.mse).toBeLessThan(1e-4);
    expect(Math.abs(a.psnr - b.psnr)).toBeLessThan(1e-3);
  });

  it('a space whose decoder adds 0.1 to every pixel: MSE 0.01 (unclamped pixels), PSNR 10·log10(4 / 0.01)', () => {
    // A 2×-downsampling "space" that keeps every pixel: latents (B, 4C, S/2, S/2) by space-to-depth.
    const C = 1, f = 2;
    const space: LatentSpace = {
      file: 'fake', channels: 4 * C, inputChannels: C, imageChannels: C, factor: f,
      side: (s) => s / f,
      encode: (x: Tensor) => {
        const [B, , S] = x.shape, h = S / f, z = new Float32Array(x.size);
        for (let b = 0; b < B; b++) for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) {
          z[((b * 4 + (i % 2) * 2 + (j % 2)) * h + (i >> 1)) * h + (j >> 1)] = x.data[(b * S + i) * S + j];
        }
        return fromData(z, [B, 4 * C, h, h]);
      },
      decode: (z, n, h) => {
        const S = h * f, out = new Float32Array(n * S * S);
        for (let b = 0; b < n; b++) for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) {
          out[(b * S + i) * S + j] = z[((b * 4 + (i % 2) * 2 + (j % 2)) * h + (i >> 1)) * h + (j >> 1)] + 0.1;
        }
        return out;
      },
    };
    // Images in [−0.8, 0.8]: the shifted reconstruction stays inside [−1, 1], so the clamp never bites.
    const S = 8, count = 7, data = {
      count, channels: 1, height: S, width: S, numClasses: 1,
      get(i: number, out: Float32Array, offset = 0) { for (let k = 0; k < S * S; k++) out[offset + k] = 0.8 * Math.sin(i * 7 + k); return 0; },
    };
    const r = reconstructionError(latentSpaceReconstruct(space), data as never, count, 3);
    expect(r.mse).toBeCloseTo(0.01, 6);
    expect(r.psnr).toBeCloseTo(10 * Math.log10(400), 4);
  });

  it('refuses an empty file list, a non-positive image count and a missing file, naming what was expected', () => {
    expect(() => reconCli({ autoencoder: ' , ', images: 10, data: 'builtin' })).toThrow(/--autoencoder needs at least one file/);
    expect(() => reconCli({ autoencoder: vaeFile, images: 0, data: 'builtin' })).toThrow(/--images 0: expected a positive integer/);
    expect(() => reconCli({ autoencoder: '/nonexistent/vae.safetensors', images: 2, data: 'builtin' })).toThrow(/\/nonexistent\/vae\.safetensors not found/);
  });
});
