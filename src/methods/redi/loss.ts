// ReDi's split objective and its representation guidance (Kouzelis et al., NeurIPS 2025, arXiv
// 2504.16064; github.com/zelaki/ReDi transport/transport.py, models.py forward_with_rg), on the
// joint state [image (C channels) ; PCA features (r channels)]:
//   L = mean_flat((v − u)[:, :C]²) + λ·mean_flat((v − u)[:, C:]²)    (not the mean over C + r channels)
//   RG: v̂ = v(x_t with features 0) + w_r·(v(x_t) − v(x_t with features 0))   (w_r = 1: off)
// λ is 0 for a batch whose features were dropped (one draw per batch, featureDropped).
// Not here: the model (model.ts), the step (index.ts).
import type { Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { add, mul, slice, sub } from '../../autograd/ops/index.ts';
import { velocityLoss } from '../../diffusion/index.ts';

/** The image and feature parts of the velocity loss: out, target (B, C + r, H, W), C image channels. */
export function rediLossParts(out: Tensor, target: Tensor, imageChannels: number): { image: Tensor; feature: Tensor } {
  if (out.ndim !== 4 || out.shape[1] <= imageChannels) throw new Error(`ReDi loss: expected (B, ${imageChannels} + r, H, W), got ${fmtShape(out.shape)}`);
  return {
    image: velocityLoss(slice(out, 1, 0, imageChannels), slice(target, 1, 0, imageChannels)).loss,
    feature: velocityLoss(slice(out, 1, imageChannels), slice(target, 1, imageChannels)).loss,
  };
}

/** L = image part + λ·feature part (the formula; the engines add the parts as weighted terms). */
export function rediLoss(out: Tensor, target: Tensor, imageChannels: number, lambda: number): Tensor {
  const p = rediLossParts(out, target, imageChannels);
  return add(p.image, mul(p.feature, lambda));
}

/** One Bernoulli(p) decision for the whole batch from u ~ U(0, 1): drop the features when u < p. */
export function featureDropped(u: number, p: number): boolean {
  if (!(p >= 0 && p <= 1)) throw new Error(`redi.drop_prob must be in [0, 1], got ${p}`);
  return u < p;
}

/** The feature loss weight of a step: λ, or 0 when its features were dropped. */
export function featureWeight(lambda: number, dropped: boolean): number {
  return dropped ? 0 : lambda;
}

/** v_u + w·(v_c − v_u), all channels. */
export function representationGuidance(vCond: Tensor, vUncond: Tensor, w: number): Tensor {
  return add(vUncond, mul(sub(vCond, vUncond), w));
}
