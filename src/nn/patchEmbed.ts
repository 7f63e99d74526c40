// timm's PatchEmbed: a p x p stride-p Conv2d named `proj` turns (B, C, H, W) into tokens
// (B, T, D), T = (H/p)(W/p) in row-major (row, col) order. Each token is a Linear of its patch
// flattened in (c, py, px) order. Not here: positional embeddings (models/embeddings.ts).
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { fmtShape } from '../tensor/shape.ts';
import { reshape } from '../autograd/ops/shape.ts';
import { permute } from '../autograd/ops/layout.ts';
import { Module } from './module.ts';
import { Conv2d } from './conv2d.ts';

export class PatchEmbed extends Module {
  readonly proj: Conv2d;

  constructor(readonly inChannels: number, readonly embedDim: number, readonly patchSize: number, rng: Rng, opts: { bias?: boolean } = {}) {
    super();
    this.proj = this.child('proj', new Conv2d(inChannels, embedDim, patchSize, rng.child('proj'), { stride: patchSize, bias: opts.bias ?? true }));
  }

  /** x (B, C, H, W) -> (B, T, D). */
  forward(x: Tensor): Tensor {
    const p = this.patchSize;
    if (x.ndim !== 4 || x.shape[1] !== this.inChannels || x.shape[2] % p !== 0 || x.shape[3] % p !== 0) {
      throw new Error(`PatchEmbed: expected (B, ${this.inChannels}, H, W) with H, W multiples of ${p}, got ${fmtShape(x.shape)}`);
    }
    const y = this.proj.forward(x); // (B, D, H/p, W/p)
    const [b, d, h, w] = y.shape;
    return permute(reshape(y, [b, d, h * w]), [0, 2, 1]); // (B, T, D)
  }
}
