// SVG's stage-1 loss (Shi et al., arXiv 2510.15301; github.com/shiml20/SVG
// autoencoder/ldm/modules/losses/contperceptual_decoder.py; methods-b §6 "Loss"), autoencoder and
// discriminator on ONE tape (as RAE's, src/methods/rae/loss.ts):
//   autoencoder:  nll = l1·mean|x̂ − x| + p·LPIPS(x̂, x);  + d_w·(−mean D(x̂))            D frozen
//                 d_w = gan_weight · clamp(‖∇_W nll‖ / (‖∇_W g‖ + 1e-4), 0, 1e4), W = decoder_pred.weight
//   D:            ½(mean relu(1 − D(x)) + mean relu(1 + D(sg x̂)))                     hinge
// Both GAN terms count from gan_start (the official disc_start: the generator's and D's factor turn on
// at the same step); before, each is a constant 0 and D is not run. Ours: L1 and LPIPS are means (the
// official sums per image and divides by B — a constant factor the adaptive weight cancels in the GAN
// balance, the learning rate absorbs the rest); one AdamW for both networks (the official: two Adam).
// Not here: the model (model.ts), the method (index.ts).
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { detach } from '../../autograd/tape.ts';
import { abs, add, mean, mul, sub } from '../../autograd/ops/index.ts';
import { adaptiveGanWeight, generatorLoss, hingeDLoss, setDiscriminatorTrainable } from '../../models/ganLoss.ts';
import { perceptualLoss } from '../../models/perceptualLoss.ts';
import type { WeightedTerm } from '../method.ts';
import type { SvgAutoencoderModel } from './model.ts';

/** The adaptive weight's eps and clamp (contperceptual: 1e-4, 1e4). */
export const SVG_ADAPTIVE_EPS = 1e-4;
export const SVG_ADAPTIVE_MAX = 1e4;

export interface SvgLossWeights {
  l1: number;
  perceptual: number;
  /** Multiplies the adaptive ratio (SVG: 0.5). 0: no GAN at all. */
  gan: number;
  /** 1-based step from which both GAN terms count. */
  ganStart: number;
}

/** The terms of one step: l1, lpips (when weighted), gan (g at weight d_w) and disc (D's hinge, weight 1). `step` is 1-based. */
export function svgAutoencoderLoss(model: SvgAutoencoderModel, x: Tensor, recon: Tensor, step: number, w: SvgLossWeights): { terms: Record<string, WeightedTerm>; ganWeight: number } {
  const zero = (): Tensor => tensor([0], [], recon.dtype);
  const l1 = mean(abs(sub(recon, x))); // ()
  const terms: Record<string, WeightedTerm> = { l1: { value: l1, weight: w.l1 } };
  let nll = mul(l1, w.l1);
  if (w.perceptual > 0) {
    if (!model.perceptual) throw new Error('svg: perceptual_weight > 0 but the model has no perceptual net (built from weights, not for training?)');
    const lp = perceptualLoss(model.perceptual, recon, x); // ()
    terms.lpips = { value: lp, weight: w.perceptual };
    nll = add(nll, mul(lp, w.perceptual));
  }
  const on = w.gan > 0 && step >= w.ganStart;
  let ganWeight = 0;
  try {
    if (on) {
      setDiscriminatorTrainable(model.disc, false);
      const g = generatorLoss(model.disc.forward(recon)); // () no edge to D's parameters
      ganWeight = adaptiveGanWeight(nll, g, model.decoder.decoder_pred.weight, { discWeight: w.gan, eps: SVG_ADAPTIVE_EPS, maxWeight: SVG_ADAPTIVE_MAX }).weight;
      terms.gan = { value: g, weight: ganWeight };
      setDiscriminatorTrainable(model.disc, true);
      terms.disc = { value: hingeDLoss(model.disc.forward(detach(x)), model.disc.forward(detach(recon))), weight: 1 }; // no edge to the autoencoder
    } else {
      terms.gan = { value: zero(), weight: 0 };
      terms.disc = { value: zero(), weight: 0 };
    }
  } finally {
    setDiscriminatorTrainable(model.disc, true);
  }
  return { terms, ganWeight };
}
