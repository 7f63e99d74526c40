// Token-grid resampling for U-REPA's U-shaped SiT (SiT↓) and its alignment: a token sequence
// (B, g·g, C) in row-major raster order is read as the image (B, C, g, g), resampled with the
// PyTorch-semantics ops of autograd/ops/pool.ts, and read back as tokens. Composed of primitives
// (permute, reshape, avgPool2d, upsampleNearest, upsampleBilinear), so each has the gradient of
// its parts; test/methods/urepa.tokens.test.ts gradchecks the compositions. Not here: the model
// (model.ts), the losses (loss.ts).
import type { Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { avgPool2d, permute, reshape, upsampleBilinear, upsampleNearest } from '../../autograd/ops/index.ts';

export type TokenUpsample = 'nearest' | 'bilinear';

/** The side g of a square token grid (B, g·g, C), checked. */
export function gridSide(x: Tensor, what: string): number {
  if (x.ndim !== 3) throw new Error(`${what}: expected tokens (B, T, C), got ${fmtShape(x.shape)}`);
  const g = Math.round(Math.sqrt(x.shape[1]));
  if (g * g !== x.shape[1]) throw new Error(`${what}: ${x.shape[1]} tokens are not a square grid`);
  return g;
}

/** (B, g·g, C) tokens -> (B, C, g, g). */
function toImage(x: Tensor, g: number): Tensor {
  const [b, , c] = x.shape;
  return permute(reshape(x, [b, g, g, c]), [0, 3, 1, 2]);
}

/** (B, C, h, w) -> (B, h·w, C) tokens. */
function toTokens(x: Tensor): Tensor {
  const [b, c, h, w] = x.shape;
  return reshape(permute(x, [0, 2, 3, 1]), [b, h * w, c]);
}

/** 2×2 average pooling of a token grid: (B, g·g, C) -> (B, (g/2)², C); g must be even. */
export function tokenDown(x: Tensor): Tensor {
  const g = gridSide(x, 'tokenDown');
  if (g % 2 !== 0) throw new Error(`tokenDown: the token grid ${g}×${g} has an odd side; U-REPA's SiT↓ halves it (use an even grid: data.size / model.patch_size)`);
  return toTokens(avgPool2d(toImage(x, g), 2));
}

/**
 * ×2 upsampling of a token grid: (B, g·g, C) -> (B, (2g)², C). 'nearest' repeats each token over
 * its 2×2 block; 'bilinear' is F.interpolate(scale_factor=2, mode='bilinear', align_corners=False).
 */
export function tokenUp(x: Tensor, mode: TokenUpsample): Tensor {
  const g = gridSide(x, 'tokenUp');
  const img = toImage(x, g);
  return toTokens(mode === 'nearest' ? upsampleNearest(img, 2) : upsampleBilinear(img, { scale: 2 }, false));
}
