// The student's forward of a flow-matching step on the plain SiT: x_t and the velocity target from
// the interpolant, the model on x_t with its taps (REPA/SiT training code: github.com/sihyun-yu/REPA loss.py). Every method that does not change
// the backbone trains through this; the engines add the velocity loss (the `diff` term).
import type { Rng } from '../tensor/rng.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { slice } from '../autograd/ops/index.ts';
import { flowTrainingPair, type Interpolant } from '../diffusion/index.ts';
import { SiT } from '../models/sit.ts';
import type { Backbone, ForwardInputs, StudentForward } from './method.ts';

export function plainFlowForward(model: Backbone, b: ForwardInputs, path: Interpolant, dropout: Rng): StudentForward {
  if (!(model instanceof SiT)) throw new Error('plainFlowForward: expected the plain SiT backbone');
  const { xt, target } = flowTrainingPair(path, b.input, b.eps, b.t);
  const o = model.forward(xt, b.t, b.y, { rng: dropout, taps: b.taps });
  return { out: o.out, target, hidden: o.hidden, labels: o.labels, terms: {} };
}

/** The image tokens of a hidden state (B, P + T, D): tokens P.. (the same tensor when P is 0). */
export function imageTokens(h: Tensor, prefix: number): Tensor {
  return prefix === 0 ? h : slice(h, 1, prefix);
}
