// RAE's stage-1 loss (Zheng et al., arXiv 2510.11690; github.com/bytetriper/RAE src/train_stage1.py;
// methods-b §5), decoder and discriminator on ONE tape:
//   decoder:  l1·mean|x̂ − x| + l2·mean (x̂ − x)² + p·LPIPS(x̂, x) + λ·(−mean D(x̂))      D frozen
//             λ = 0.75 · clamp(‖∇_W nll‖ / (‖∇_W g‖ + 1e-6), 0, 1e4), W = decoder_pred.weight,
//             nll = the first three terms, g = −mean D(x̂); λ is a number (no gradient)
//   D:        ½(mean relu(1 − D(x)) + mean relu(1 + D(q(sg x̂))))   q: clamp to [−1, 1], 8-bit
// The sum of both is one scalar, yet each network gets only its own gradient: D's parameters do not
// require grad while D(x̂) is recorded for the decoder's term (so the tape has no edge from it to
// them), and D's own term reads x̂ detached (no edge to the decoder). One AdamW then steps both at
// the same settings — RAE: "the discriminator uses the same optimizer settings" — and the gradient
// clipping of train.grad_clip applies to their joint norm (ours; the official clips each alone).
// The GAN term counts from step gan_start, D's term from disc_start (RAE: epochs 8 and 6 of 16);
// before, each is a constant 0 and D is not run. D is a PatchGAN (models/patchGan.ts), not RAE's
// frozen DINO-S/8 with trainable heads, and no DiffAug: both are ours (the stand-in scale).
// Not here: the model (model.ts), the method (index.ts).
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { detach } from '../../autograd/tape.ts';
import { abs, add, mean, mseLoss, mul, sub } from '../../autograd/ops/index.ts';
import { adaptiveGanWeight, generatorLoss, hingeDLoss, setDiscriminatorTrainable } from '../../models/ganLoss.ts';
import { perceptualLoss } from '../../models/perceptualLoss.ts';
import type { WeightedTerm } from '../method.ts';
import type { RaeDecoderModel } from './model.ts';

/** RAE's adaptive-weight constants (methods-b §5): eps added to ‖∇g‖ and the ratio's upper clamp. */
export const RAE_ADAPTIVE_EPS = 1e-6;
export const RAE_ADAPTIVE_MAX = 1e4;

export interface RaeDecoderLossWeights {
  l1: number;
  l2: number;
  perceptual: number;
  /** Multiplies the adaptive ratio (RAE 0.75). */
  gan: number;
  /** 1-based steps from which the generator's and D's terms count. */
  ganStart: number;
  discStart: number;
}

/** D's input from a reconstruction: detached, clamped to [−1, 1], quantised to 8 bits (RAE's fresh-reconstruction handling). */
export function quantize8bit(x: Tensor): Tensor {
  const src = detach(x).data, out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = Math.min(1, Math.max(-1, src[i]));
    out[i] = Math.round((v + 1) * 127.5) / 127.5 - 1;
  }
  return tensor(out, x.shape, x.dtype);
}

export interface RaeDecoderLoss {
  /** Weighted terms for the Student (diff, the MSE, is the engines' own at diffWeight l2). */
  terms: Record<string, WeightedTerm>;
  /** The adaptive weight λ used (0 before gan_start). */
  ganWeight: number;
}

/**
 * The terms of one step on the current tape: l1, lpips (when weighted), gan (g at weight λ) and disc
 * (D's hinge at weight 1). `step` is 1-based. D's parameters require grad again on return.
 */
export function raeDecoderLoss(model: RaeDecoderModel, x: Tensor, recon: Tensor, step: number, w: RaeDecoderLossWeights): RaeDecoderLoss {
  const zero = (): Tensor => tensor([0], [], recon.dtype);
  const l1 = mean(abs(sub(recon, x))); // ()
  let lp: Tensor | null = null;
  if (w.perceptual > 0) {
    if (!model.perceptual) throw new Error('rae: perceptual_weight > 0 but the model has no perceptual net (built from weights, not for training?)');
    lp = perceptualLoss(model.perceptual, recon, x); // ()
  }
  const terms: Record<string, WeightedTerm> = { l1: { value: l1, weight: w.l1 } };
  if (lp) terms.lpips = { value: lp, weight: w.perceptual };
  let ganWeight = 0;
  try {
    setDiscriminatorTrainable(model.disc, false);
    if (w.gan > 0 && step >= w.ganStart) {
      const g = generatorLoss(model.disc.forward(recon)); // () D frozen: no edge to its parameters
      let nll = mul(l1, w.l1);
      if (lp) nll = add(nll, mul(lp, w.perceptual));
      if (w.l2 > 0) nll = add(nll, mul(mseLoss(recon, x), w.l2));
      ganWeight = adaptiveGanWeight(nll, g, model.decoder.decoder_pred.weight, { discWeight: w.gan, eps: RAE_ADAPTIVE_EPS, maxWeight: RAE_ADAPTIVE_MAX }).weight;
      terms.gan = { value: g, weight: ganWeight };
    } else terms.gan = { value: zero(), weight: 0 };
    setDiscriminatorTrainable(model.disc, true);
    terms.disc = step >= w.discStart
      ? { value: hingeDLoss(model.disc.forward(detach(x)), model.disc.forward(quantize8bit(recon))), weight: 1 } // no edge to the decoder
      : { value: zero(), weight: 0 };
  } finally {
    setDiscriminatorTrainable(model.disc, true);
  }
  return { terms, ganWeight };
}
