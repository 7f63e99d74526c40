// REG's training targets and loss (Wu et al., NeurIPS 2025; github.com/Martinser/REG loss.py): the encoder's
// class token g (B, d_enc) is noised with the image's t (shared) and its own noise ε_g
// (independent of the image noise), g_t = α(t)·g + σ(t)·ε_g with velocity target v_g* (linear:
// ε_g − g); the alignment target is [g ; P] (B, 1+T, d_enc) so REPA's loss covers the class token
// too; L = L_diff + λ·L_proj + β·mean_b mean_d (ĝ_v − v_g*)², λ 0.5, β 0.03. Not here: the model
// (models/reg.ts), the cosine alignment (repa.ts), the sampler (regSampler.ts).
import type { Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { add, concat, mul, reshape } from '../../autograd/ops/index.ts';
import { flowTrainingPair, velocityLoss, type FlowTrainingPair, type Interpolant, type Times } from '../../diffusion/index.ts';

/** REG's `--cls` weight β of the class-token velocity loss. */
export const REG_CLS_COEFF = 0.03;

/** g_t and v_g* for the class token g (B, d_enc), its noise ε_g (B, d_enc) and the image's times t. */
export function regClsPair(p: Interpolant, g: Tensor, epsG: Tensor, t: Times): FlowTrainingPair {
  if (g.ndim !== 2 || epsG.ndim !== 2 || g.shape[0] !== epsG.shape[0] || g.shape[1] !== epsG.shape[1]) {
    throw new Error(`regClsPair: class token ${fmtShape(g.shape)} and its noise ${fmtShape(epsG.shape)} must share one (B, d_enc) shape`);
  }
  return flowTrainingPair(p, g, epsG, t);
}

/** The alignment target [g ; P]: class token first, then the patch tokens, (B, 1+T, d_enc). */
export function regAlignTarget(cls: Tensor, patch: Tensor): Tensor {
  if (cls.ndim !== 2 || patch.ndim !== 3 || cls.shape[0] !== patch.shape[0] || cls.shape[1] !== patch.shape[2]) {
    throw new Error(`regAlignTarget: class token ${fmtShape(cls.shape)} does not fit patch tokens ${fmtShape(patch.shape)}`);
  }
  return concat([reshape(cls, [cls.shape[0], 1, cls.shape[1]]), patch], 1);
}

/** mean_b mean_d (ĝ_v − v_g*)². */
export const regClsLoss = (pred: Tensor, target: Tensor): Tensor => velocityLoss(pred, target).loss;

/** L_diff + λ·L_proj + β·L_cls. */
export function regTotalLoss(diff: Tensor, proj: Tensor, cls: Tensor, projCoeff: number, clsCoeff = REG_CLS_COEFF): Tensor {
  return add(add(diff, mul(proj, projCoeff)), mul(cls, clsCoeff));
}
