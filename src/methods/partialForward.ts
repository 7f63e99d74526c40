// The SRA teacher's forward up to one block (SRA, github.com/vvvvvjdy/SRA SiT-SRA/train.py: "stopping after block L_T is
// equivalent" to the official full forward, whose later blocks and final layer do not touch h_T).
// Embeds like SiT.forward (patches + pos_embed, t and label embeddings), runs blocks 1..k and
// returns the hidden state after block k (B, T, D). Labels are used as given (no dropout): the
// teacher reuses the student's post-dropout labels. A backbone with its own partial forward
// (PartialForward: U-REPA's U-shaped SiT) answers itself. Not here: gradients (the caller decides; the
// trainer runs this under noGrad), REG's extra token.
import type { Tensor } from '../tensor/tensor.ts';
import { add } from '../autograd/ops/index.ts';
import type { SiT } from '../models/sit.ts';

/** A backbone whose blocks do not simply follow one another (U-REPA's U-shaped SiT) answers this itself. */
export interface PartialForward {
  hiddenAfter(x: Tensor, t: ArrayLike<number>, labels: ArrayLike<number>, block: number): Tensor;
}

/**
 * A model with no hidden state of noised images for the evaluator's probe and CKNNA (an
 * autoregressive token model: DiGIT): the evaluator measures its samples only.
 */
export interface NotProbeable { readonly probeable: false }

/** Whether the evaluator can probe the model's hidden state (hiddenAfterBlock). */
export const isProbeable = (model: object): boolean => !('probeable' in model && (model as NotProbeable).probeable === false);

/**
 * A model whose forward is not diffactor's forward(x_t, t, y) of a velocity or ε model (EPG's VE x0
 * denoiser, DiGIT's GPT): the evaluator's held-out denoising loss does not apply.
 */
export interface OwnForward { readonly flowForward: false }

/** Whether forward(x_t, t, y) is a diffactor velocity/ε model's (eval/heldOutLoss.ts can measure it). */
export const hasFlowForward = (model: object): boolean => !('flowForward' in model && (model as OwnForward).flowForward === false);

export function hiddenAfterBlock(model: SiT | PartialForward, x: Tensor, t: ArrayLike<number>, labels: ArrayLike<number>, block: number): Tensor {
  if ('hiddenAfter' in model) return model.hiddenAfter(x, t, labels, block);
  const depth = model.config.depth;
  if (!Number.isInteger(block) || block < 1 || block > depth) throw new Error(`hiddenAfterBlock: block ${block} is not in 1..${depth}`);
  const y = model.y_embedder.dropLabels(labels, { training: false }); // validates, drops nothing
  let h = add(model.x_embedder.forward(x), model.pos_embed); // (B, T, D)
  const cond = add(model.t_embedder.forward(t), model.y_embedder.forward(y)); // (B, D)
  for (let i = 0; i < block; i++) h = model.blocks.items[i].forward(h, cond); // (B, T, D)
  return h;
}
