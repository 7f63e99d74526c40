// U-REPA's alignment (Tian et al., "U-REPA: Aligning Diffusion U-Nets to ViTs", NeurIPS 2025,
// arXiv 2503.18414): the middle stage's hidden state goes through REPA's projector MLP FIRST and is
// THEN upsampled ×2 to the encoder's token grid (the paper's stated order), and two losses compare
// it with the frozen encoder's patch tokens y:
//   L_tok = −mean_{b,n} cos(u_bn, y_bn)                                  (REPA's, repa/loss.ts)
//   L_man = mean_{i,j} (M_u[i,j] − M_y[i,j])²                            ("manifold" loss)
// The paper only says the manifold loss regularises "the relative similarity between samples";
// the official formula could not be read. OUR choices (a switch, `manifold`):
//   'sample' (default, the paper's wording): every token is L2-normalised, each sample's tokens
//            are flattened to one vector, and M[i,j] is the cosine of samples i and j (B×B);
//   'token':  M_b[n,m] is the cosine of tokens n and m of one sample (T×T, per sample, as the
//            SimpleTuner re-implementation does), averaged over b, n, m.
// No margin / ReLU. Both are ≥ 0, symmetric in (u, y), 0 when u = c·y (c > 0), and invariant to a
// positive rescaling of any token (hence of any sample). Not here: the model (model.ts).
import type { Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { matmul, mean, mul, reshape, sub, transpose } from '../../autograd/ops/index.ts';
import { unitNormalize } from '../../autograd/ops/unitNormalize.ts';
import { REPA_NORM_EPS, negCosineAlignment } from '../repa/loss.ts';
import type { Projector } from '../../models/projector.ts';
import { tokenUp, type TokenUpsample } from './tokens.ts';

export type ManifoldLevel = 'sample' | 'token';

/** U-REPA's defaults: λ 0.5 and w 3.0 (both as third-party re-implementations give the paper's values). */
export const UREPA_PROJ_COEFF = 0.5;
export const UREPA_MANIFOLD_COEFF = 3.0;

/** The middle stage's hidden state (B, g²/4, D) → projector → (B, g²/4, d_enc) → ×2 upsampled (B, g², d_enc). */
export function alignedTokens(projector: Projector, hMid: Tensor, mode: TokenUpsample): Tensor {
  return tokenUp(projector.forward(hMid), mode);
}

/** L_tok: REPA's −mean cos over tokens in raster order (the encoder's grid must be the upsampled one). */
export function uRepaTokenLoss(u: Tensor, y: Tensor): Tensor {
  return negCosineAlignment(u, y, 'U-REPA');
}

/** (B, T, d) with every token divided by its norm. */
function unitTokens(x: Tensor): Tensor {
  const [b, t, d] = x.shape;
  return reshape(unitNormalize(reshape(x, [b * t, d]), REPA_NORM_EPS), [b, t, d]);
}

/** The similarity structure the manifold loss compares: (B, B) for 'sample', (B, T, T) for 'token'. */
export function similarityMatrix(x: Tensor, level: ManifoldLevel): Tensor {
  if (x.ndim !== 3) throw new Error(`U-REPA manifold loss: expected tokens (B, T, d), got ${fmtShape(x.shape)}`);
  const n = unitTokens(x); // (B, T, d)
  if (level === 'token') return matmul(n, transpose(n, 1, 2)); // (B, T, T)
  const [b, t, d] = x.shape;
  const s = unitNormalize(reshape(n, [b, t * d]), REPA_NORM_EPS); // (B, T·d), unit rows
  return matmul(s, transpose(s, 0, 1)); // (B, B)
}

/** L_man = mean of (M_u − M_y)² over the similarity matrix (and the batch, for 'token'). */
export function manifoldLoss(u: Tensor, y: Tensor, level: ManifoldLevel): Tensor {
  if (u.ndim !== 3 || y.ndim !== 3 || u.shape[0] !== y.shape[0] || u.shape[1] !== y.shape[1]) {
    throw new Error(`U-REPA manifold loss: aligned tokens ${fmtShape(u.shape)} and encoder tokens ${fmtShape(y.shape)} need the same (B, T)`);
  }
  const dm = sub(similarityMatrix(u, level), similarityMatrix(y, level));
  return mean(mul(dm, dm));
}
