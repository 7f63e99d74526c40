// SRA, self-representation alignment (Jiang et al. 2025; github.com/vvvvvjdy/SRA SiT-SRA/loss.py): the pieces that differ from a plain
// SiT step. Teacher times t_T = clamp(t_s − t_max·u, 0, 1) (step 1: the teacher is never noisier
// than the student); the student head `ap_head` = SimpleHead(D, D) (Linear(D → 2D) − SiLU −
// Linear(2D → D), SiT-SRA models/sit.py, xavier weights, zero biases); the alignment losses
// sml1 (β 0.05) / cos / l1 / l2 (step 5), where `cos` keeps the official axis quirk by default
// (cosine across tokens per channel, PyTorch's dim=1 on (B, T, D)) and `features` is the per-token
// variant; the loss weight (step 6): constant, or the sml1 epoch decay w·0.1^((epoch − start)/span)
// after `start` (official: w 0.2, start 149, span 1000 at 256 px). Not here: the partial teacher
// forward (partialForward.ts), the EMA (optim/ema.ts), the trainer.
import type { Tensor } from '../../tensor/tensor.ts';
import type { Rng } from '../../tensor/rng.ts';
import { fmtShape, sameShape } from '../../tensor/shape.ts';
import { add, cosineSimilarity, mean, mseLoss, mul, neg, smoothL1Loss } from '../../autograd/ops/index.ts';
import { Module } from '../../nn/module.ts';
import { Linear } from '../../nn/linear.ts';
import { Activation, SiLU } from '../../nn/activation.ts';
import { xavierUniform, zeros } from '../../nn/init.ts';

/** t_T = clamp(t_s − t_max·u, 0, 1) per sample, u ∈ [0, 1). */
export function sraTeacherTimes(ts: ArrayLike<number>, u: ArrayLike<number>, tMax: number): Float64Array {
  if (ts.length !== u.length) throw new Error(`sraTeacherTimes: ${ts.length} times but ${u.length} offsets`);
  if (!(tMax >= 0)) throw new Error(`sraTeacherTimes: t_max must be >= 0, got ${tMax}`);
  const out = new Float64Array(ts.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, ts[i] - tMax * u[i]));
  return out;
}

/** SiT-SRA's SimpleHead(in, out): linear1 (in → in+out), SiLU, linear2 (in+out → out). forward (B, T, in) -> (B, T, out). */
export class SimpleHead extends Module {
  readonly linear1: Linear;
  readonly linear2: Linear;
  readonly act: Activation;

  constructor(inDim: number, outDim: number, rng: Rng) {
    super();
    this.linear1 = this.child('linear1', new Linear(inDim, inDim + outDim, rng.child('linear1')));
    this.linear2 = this.child('linear2', new Linear(inDim + outDim, outDim, rng.child('linear2')));
    this.act = this.child('act', SiLU());
    // SRA's initialize_weights reaches the head too: xavier-uniform weights, zero biases.
    for (const [name, l] of [['linear1', this.linear1], ['linear2', this.linear2]] as const) {
      xavierUniform(l.weight, rng.child(`init.${name}`));
      zeros(l.bias!);
    }
  }

  forward(x: Tensor): Tensor {
    return this.linear2.forward(this.act.forward(this.linear1.forward(x)));
  }
}

export type SraLossKind = 'sml1' | 'cos' | 'l1' | 'l2';
/** `tokens`: the official cos over dim 1 of (B, T, D) (per channel, across tokens); `features`: per token. */
export type SraCosAxis = 'tokens' | 'features';

export interface SraLossOptions {
  kind: SraLossKind;
  /** SmoothL1 β (sml1 only); official 0.05. */
  beta?: number;
  cosAxis?: SraCosAxis;
}

export const SRA_SML1_BETA = 0.05;
/** torch.nn.functional.cosine_similarity's eps. */
const COS_EPS = 1e-8;

/** L_align(student head output, teacher hidden), both (B, T, D); the teacher side is a constant. */
export function sraAlignLoss(student: Tensor, teacher: Tensor, o: SraLossOptions): Tensor {
  if (student.ndim !== 3 || !sameShape(student.shape, teacher.shape)) {
    throw new Error(`sraAlignLoss: student ${fmtShape(student.shape)} and teacher ${fmtShape(teacher.shape)} must share one (B, T, D) shape`);
  }
  switch (o.kind) {
    case 'sml1': return smoothL1Loss(student, teacher, o.beta ?? SRA_SML1_BETA);
    case 'l1': return smoothL1Loss(student, teacher, 0); // β = 0 is F.l1_loss
    case 'l2': return mseLoss(student, teacher);
    case 'cos': {
      const axis = (o.cosAxis ?? 'tokens') === 'tokens' ? 1 : -1;
      return add(neg(mean(cosineSimilarity(student, teacher, axis, COS_EPS))), 1); // 1 − mean cos, in [0, 2]
    }
  }
}

export interface SraWeightSchedule {
  kind: 'constant' | 'epoch-decay';
  /** The weight (constant), or the weight up to and including startEpoch (epoch-decay). */
  weight: number;
  startEpoch?: number;
  spanEpochs?: number;
}

/**
 * The weight of L_align in epoch `epoch` (0-based). Official 256 px sml1:
 * 2·0.1^(1 + (epoch − 149)/1000) for epoch > 149, else 0.2 — i.e. weight 0.2, start 149, span 1000.
 */
export function sraAlignWeight(epoch: number, s: SraWeightSchedule): number {
  if (s.kind === 'constant') return s.weight;
  const start = s.startEpoch ?? 149, span = s.spanEpochs ?? 1000;
  if (!(span > 0)) throw new Error(`sraAlignWeight: spanEpochs must be > 0, got ${span}`);
  return epoch > start ? s.weight * 0.1 ** ((epoch - start) / span) : s.weight;
}

/** L_diff + w·L_align. */
export function sraTotalLoss(diff: Tensor, align: Tensor, weight: number): Tensor {
  return add(diff, mul(align, weight));
}
