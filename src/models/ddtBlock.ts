// The DDT block (Wang et al., "DDT: Decoupled Diffusion Transformer", arXiv 2504.05741; official
// MCG-NJU/DDT src/models/denoiser/decoupled_improved_dit.py, class DDTBlock), reusable by any
// model built from "improved DiT" blocks (DDT's encoder and decoder; RAE's DiT^DH head):
//   (β1, γ1, α1, β2, γ2, α2) = adaLN_modulation.0(c)   (a Linear on an already-SiLU'd condition)
//   x ← x + α1 ⊙ Attn(RMSNorm(x)(1 + γ1) + β1)        Attn: q/k RMSNorm, 2-D RoPE, no qkv bias
//   x ← x + α2 ⊙ SwiGLU(RMSNorm(x)(1 + γ2) + β2)      hidden ⌊2·mlpRatio·D/3⌋, no biases
// c is (B, 1, D) (one condition per image) or (B, T, D) (per-token adaLN: DDT's decoder reads the
// encoder's state this way); the modulation broadcasts over tokens either way. Every Linear keeps
// PyTorch's default init (the official DDT does not zero the blocks' adaLN). State_dict names are the
// official ones: norm1.weight, attn.{qkv.weight, q_norm.weight, k_norm.weight, proj.*}, norm2.weight,
// mlp.{w1, w2, w3}.weight, adaLN_modulation.0.*. Also the per-token final layer (FinalLayer there).
// Not here: the model that stacks them (methods/ddt/model.ts), the angle table (autograd/ops/rope.ts).
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { fmtShape } from '../tensor/shape.ts';
import { add, chunk, gatedResidual, layerNorm, modulate, mul, reshape } from '../autograd/index.ts';
import { Module } from '../nn/module.ts';
import { Linear } from '../nn/linear.ts';
import { Sequential } from '../nn/sequential.ts';
import { RMSNorm } from '../nn/rmsNorm.ts';
import { SwiGLU, swigluHidden } from '../nn/swiglu.ts';
import { RopeAttention } from '../nn/ropeAttention.ts';

/** x (1 + scale) + shift with shift, scale broadcast over x (B, T, D): (B, 1, D) or (B, T, D). */
export function modulateTokens(x: Tensor, shift: Tensor, scale: Tensor): Tensor {
  return add(mul(x, add(scale, 1)), shift);
}

function checkCond(what: string, x: Tensor, c: Tensor): void {
  if (x.ndim !== 3 || c.ndim !== 3 || c.shape[0] !== x.shape[0] || c.shape[2] !== x.shape[2] || (c.shape[1] !== 1 && c.shape[1] !== x.shape[1])) {
    throw new Error(`${what}: expected x (B, T, D) and c (B, 1, D) or (B, T, D), got x ${fmtShape(x.shape)}, c ${fmtShape(c.shape)}`);
  }
}

export class DDTBlock extends Module {
  readonly norm1: RMSNorm;
  readonly attn: RopeAttention;
  readonly norm2: RMSNorm;
  readonly mlp: SwiGLU;
  readonly adaLN_modulation: Sequential;

  constructor(hidden: number, heads: number, mlpRatio: number, rng: Rng) {
    super();
    this.norm1 = this.child('norm1', new RMSNorm(hidden, 1e-6));
    this.attn = this.child('attn', new RopeAttention(hidden, heads, rng.child('attn'), { qkvBias: false, qkNorm: true }));
    this.norm2 = this.child('norm2', new RMSNorm(hidden, 1e-6));
    this.mlp = this.child('mlp', new SwiGLU(hidden, swigluHidden(Math.floor(hidden * mlpRatio)), rng.child('mlp')));
    this.adaLN_modulation = this.child('adaLN_modulation', new Sequential([new Linear(hidden, 6 * hidden, rng.child('adaLN_modulation.0'))]));
  }

  /** x (B, T, D); c (B, 1, D) or (B, T, D), already through SiLU; angles (T, d/2) -> (B, T, D). */
  forward(x: Tensor, c: Tensor, angles: Float64Array | null): Tensor {
    checkCond('DDTBlock', x, c);
    if (c.shape[1] === 1 && x.shape[1] > 1) {
      // One condition per image (the encoder): the (B, D) fused kernels modulate and gatedResidual.
      const [b, , d] = c.shape;
      const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = chunk(reshape(this.adaLN_modulation.forward(c), [b, 6 * d]), 6, -1); // 6 × (B, D)
      x = gatedResidual(x, gateMsa, this.attn.forward(modulate(this.norm1.forward(x), shiftMsa, scaleMsa), angles));
      return gatedResidual(x, gateMlp, this.mlp.forward(modulate(this.norm2.forward(x), shiftMlp, scaleMlp)));
    }
    const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = chunk(this.adaLN_modulation.forward(c), 6, -1); // 6 × (B, T, D)
    x = add(x, mul(gateMsa, this.attn.forward(modulateTokens(this.norm1.forward(x), shiftMsa, scaleMsa), angles)));
    return add(x, mul(gateMlp, this.mlp.forward(modulateTokens(this.norm2.forward(x), shiftMlp, scaleMlp))));
  }
}

/** LayerNorm (no affine, eps 1e-6) modulated by adaLN_modulation.0(c) (no SiLU), then linear: (B, T, out). */
export class DDTFinalLayer extends Module {
  readonly linear: Linear;
  readonly adaLN_modulation: Sequential;

  constructor(readonly hidden: number, out: number, rng: Rng) {
    super();
    this.linear = this.child('linear', new Linear(hidden, out, rng.child('linear')));
    this.adaLN_modulation = this.child('adaLN_modulation', new Sequential([new Linear(hidden, 2 * hidden, rng.child('adaLN_modulation.0'))]));
  }

  /** x (B, T, D); c (B, 1|T, D) -> (B, T, out). */
  forward(x: Tensor, c: Tensor): Tensor {
    checkCond('DDTFinalLayer', x, c);
    const [shift, scale] = chunk(this.adaLN_modulation.forward(c), 2, -1);
    return this.linear.forward(modulateTokens(layerNorm(x, this.hidden, null, null, 1e-6), shift, scale));
  }
}
