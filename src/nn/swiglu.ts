// SwiGLU feed-forward (Shazeer, "GLU Variants Improve Transformer", arXiv 2002.05202), LLaMA's
// layout as DDT's FeedForward (MCG-NJU/DDT decoupled_improved_dit.py): w2(silu(w1 x) ⊙ w3 x), no
// biases, hidden width ⌊2·hidden/3⌋ of the `hidden` asked for (swigluHidden), so that the
// parameter count matches a GELU MLP of that width. State_dict names w1, w2, w3; torch's default
// Linear init. Not here: the block that uses it.
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { mul } from '../autograd/ops/arith.ts';
import { silu } from '../autograd/ops/unary.ts';
import { linear } from '../autograd/ops/matmul.ts';
import { Module } from './module.ts';
import { Linear } from './linear.ts';

/** int(2·hidden/3): the width DDT's FeedForward uses for an MLP hidden width `hidden`. */
export const swigluHidden = (hidden: number): number => Math.floor((2 * hidden) / 3);

/** w2(silu(w1 x) ⊙ w3 x) on (out, in) weights, no biases: the module's forward as a function. */
export function swiglu(x: Tensor, w1: Tensor, w3: Tensor, w2: Tensor): Tensor {
  return linear(mul(silu(linear(x, w1)), linear(x, w3)), w2);
}

export class SwiGLU extends Module {
  readonly w1: Linear;
  readonly w3: Linear;
  readonly w2: Linear;

  /** dim -> width (the SwiGLU hidden width itself; see swigluHidden) -> dim. */
  constructor(readonly dim: number, readonly width: number, rng: Rng) {
    super();
    if (!Number.isInteger(width) || width < 1) throw new Error(`SwiGLU: hidden width must be a positive integer, got ${width}`);
    this.w1 = this.child('w1', new Linear(dim, width, rng.child('w1'), { bias: false }));
    this.w3 = this.child('w3', new Linear(dim, width, rng.child('w3'), { bias: false }));
    this.w2 = this.child('w2', new Linear(width, dim, rng.child('w2'), { bias: false }));
  }

  /** x (..., dim) -> (..., dim). */
  forward(x: Tensor): Tensor {
    return swiglu(x, this.w1.weight, this.w3.weight, this.w2.weight);
  }
}
