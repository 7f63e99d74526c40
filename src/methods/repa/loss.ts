// REPA's alignment loss (Yu et al., ICLR 2025; github.com/sihyun-yu/REPA loss.py):
// the projected hidden tokens z̃ (B, T, Dz) against the frozen encoder's patch tokens z* (B, T, Dz),
// index-wise (token n of the student is compared with token n of the encoder, both in row-major
// raster order), L_proj = −mean_{enc, b, n} cos(z̃_bn, z*_bn) with F.normalize's eps 1e-12, and
// L = L_diff + λ·L_proj. REG (§3) reuses it over 1+T tokens. Not here: the projector MLP
// (models/projector.ts), the encoder (encoder.ts), the trainer.
import type { Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { add, cosineSimilarity, mean, mul, neg } from '../../autograd/ops/index.ts';

/** F.normalize's default eps: each norm is clamped to at least this. */
export const REPA_NORM_EPS = 1e-12;

/** REPA's λ (`proj_coeff`). */
export const REPA_PROJ_COEFF = 0.5;

/** Throws unless projected tokens and encoder tokens are (B, T, Dz) with the same B, T and Dz. */
export function checkAlignment(pred: Tensor, target: Tensor, what = 'REPA'): void {
  if (pred.ndim !== 3 || target.ndim !== 3) {
    throw new Error(`${what}: alignment needs (B, T, Dz) tokens, got projector ${fmtShape(pred.shape)} and encoder ${fmtShape(target.shape)}`);
  }
  const [b, t, d] = pred.shape;
  if (target.shape[0] !== b) throw new Error(`${what}: batch ${b} from the projector but ${target.shape[0]} from the encoder`);
  if (target.shape[1] !== t) {
    throw new Error(`${what}: the projector gives ${t} tokens but the encoder ${target.shape[1]}; the encoder's patch grid must equal the model's token grid (same raster order)`);
  }
  if (target.shape[2] !== d) throw new Error(`${what}: projector output width ${d} differs from the encoder width ${target.shape[2]} (projector z_dim must be the encoder's embed dim)`);
}

/** One encoder's term: −mean_{b,n} cos(pred_bn, target_bn), in [−1, 1]. */
export function negCosineAlignment(pred: Tensor, target: Tensor, what = 'REPA'): Tensor {
  checkAlignment(pred, target, what);
  return neg(mean(cosineSimilarity(pred, target, -1, REPA_NORM_EPS))); // ()
}

/** L_proj over several encoders (REPA divides by the number of encoders): the mean of their terms. */
export function repaProjLoss(pairs: readonly { pred: Tensor; target: Tensor }[]): Tensor {
  if (pairs.length === 0) throw new Error('repaProjLoss: no (projection, encoder target) pairs');
  let total = negCosineAlignment(pairs[0].pred, pairs[0].target);
  for (let i = 1; i < pairs.length; i++) total = add(total, negCosineAlignment(pairs[i].pred, pairs[i].target));
  return pairs.length === 1 ? total : mul(total, 1 / pairs.length);
}

/** L_diff + λ·L_proj. */
export function repaTotalLoss(diff: Tensor, proj: Tensor, coeff = REPA_PROJ_COEFF): Tensor {
  return add(diff, mul(proj, coeff));
}
