// The SiT/REPA regression loss: per sample the mean over every non-batch dim of (pred − target)²
// (`mean_flat`), then the mean over the batch. The same shape of loss is DDPM's ε-MSE, so both
// use meanFlatMse. Differentiable in pred (and target, if it requires grad). Not here: the
// learned-variance VLB (ddpmLoss.ts), alignment losses (methods/).
import type { Tensor } from '../tensor/tensor.ts';
import { fmtShape, sameShape } from '../tensor/shape.ts';
import { mean, mseLoss } from '../autograd/ops/index.ts';
import { interpolate, velocityTarget, type Interpolant, type Times } from './interpolant.ts';

export interface PerSampleLoss {
  /** (B) */
  perSample: Tensor;
  /** () mean of perSample */
  loss: Tensor;
}

/** mean_b mean_{c,h,w} (pred − target)²; pred, target (B, ...). */
export function meanFlatMse(pred: Tensor, target: Tensor): PerSampleLoss {
  if (!sameShape(pred.shape, target.shape) || pred.ndim < 1) {
    throw new Error(`meanFlatMse: pred ${fmtShape(pred.shape)} and target ${fmtShape(target.shape)} must share one (B, ...) shape`);
  }
  const sq = mseLoss(pred, target, 'none'); // (B, ...)
  const perSample = pred.ndim === 1 ? sq : mean(sq, pred.shape.slice(1).map((_, i) => i + 1)); // (B)
  return { perSample, loss: mean(perSample) };
}

/** SiT velocity loss (REPA loss.py): ‖v̂ − v*‖² averaged per sample, then over the batch. */
export const velocityLoss = meanFlatMse;

export interface FlowTrainingPair {
  /** (B, ...) the model input x_t */
  xt: Tensor;
  /** (B, ...) the velocity target */
  target: Tensor;
}

/** x_t and the velocity target for data x, noise ε and per-sample times t. */
export function flowTrainingPair(p: Interpolant, x: Tensor, eps: Tensor, t: Times): FlowTrainingPair {
  return { xt: interpolate(p, x, eps, t), target: velocityTarget(p, x, eps, t) };
}
