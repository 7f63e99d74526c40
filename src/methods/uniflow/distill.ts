// UniFlow's layer-wise adaptive self-distillation (Yue et al., "UniFlow: A Unified Pixel Flow
// Tokenizer for Visual Understanding and Generation", ICLR'26, arXiv 2510.10575; methods-b §9; no
// official training code is public — the formulas are the paper's as summarised there):
//   α_l = 1 − mean_{b,s} cos(H_U^{(l)}[b, s], H_T^{(l)}[b, s])        l = 1..L, α_l ∈ [0, 2]
//   w_l = softmax_l(ln(l/L) + β·α_l)                                  β = 2 (the paper's ablation optimum)
//   L_dist = Σ_l w_l·α_l
// Ours (the spec marks them reconstructed): w_l is a CONSTANT of the step (stop-gradient; the
// gradient reaches the student only through α_l); the mean runs over the batch as well as the S
// tokens; H are the patch tokens after block l, before the final norm (no class token).
// Not here: where the hidden states come from (model.ts), the method (index.ts).
import type { Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { add, cosineSimilarity, mean, mul, sub } from '../../autograd/ops/index.ts';
import { tensor } from '../../tensor/tensor.ts';

/** β of the adaptive weights (UniFlow's ablation optimum; β = 0 gives the fixed prior l / Σk). */
export const UNIFLOW_BETA = 2;

/** α = 1 − mean cos over every (batch, token) row of student and teacher states (B, S, D): a scalar on the tape. */
export function alignmentPenalty(hU: Tensor, hT: Tensor): Tensor {
  if (hU.ndim !== 3 || hU.shape.some((d, i) => d !== hT.shape[i]) || hT.ndim !== 3) {
    throw new Error(`alignmentPenalty: expected student and teacher states of one shape (B, S, D), got ${fmtShape(hU.shape)} and ${fmtShape(hT.shape)}`);
  }
  return sub(tensor([1], [], hU.dtype), mean(cosineSimilarity(hU, hT, -1))); // ()
}

/** w_l = softmax_l(ln(l/L) + β·α_l), l = 1..L, from the α values (numbers; computed in float64). */
export function distillWeights(alphas: readonly number[], beta = UNIFLOW_BETA): number[] {
  const n = alphas.length;
  if (n === 0) throw new Error('distillWeights: no layers');
  if (!Number.isFinite(beta)) throw new Error(`distillWeights: beta must be finite, got ${beta}`);
  const logits = alphas.map((a, i) => {
    if (!Number.isFinite(a)) throw new Error(`distillWeights: α_${i + 1} = ${a} is not finite`);
    return Math.log((i + 1) / n) + beta * a;
  });
  const m = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - m));
  const s = e.reduce((p, q) => p + q, 0);
  return e.map((v) => v / s);
}

export interface DistillLoss {
  /** Σ w_l α_l on the tape, w constant. */
  loss: Tensor;
  /** α_l and w_l, l = 1..L. */
  alphas: number[];
  weights: number[];
}

/** L_dist over L pairs of student / teacher states (B, S, D); the teacher's states should carry no tape (they get no gradient). */
export function distillLoss(student: readonly Tensor[], teacher: readonly Tensor[], beta = UNIFLOW_BETA): DistillLoss {
  if (student.length !== teacher.length || student.length === 0) throw new Error(`distillLoss: ${student.length} student and ${teacher.length} teacher layers (need the same, ≥ 1)`);
  const a = student.map((h, i) => alignmentPenalty(h, teacher[i]));
  const alphas = a.map((t) => t.item()); // item(): 0 for a shape-only tensor (simulate)
  const weights = distillWeights(alphas, beta);
  let loss = mul(a[0], weights[0]);
  for (let l = 1; l < a.length; l++) loss = add(loss, mul(a[l], weights[l]));
  return { loss, alphas, weights };
}
