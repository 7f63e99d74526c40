// The GAN terms of REPA-E's VAE loss, for the PatchGAN discriminator of patchGan.ts. What the
// official code does (End2End-Diffusion/REPA-E @3ad8046, loss/losses.py, class
// ReconstructionLoss_Single_Stage and its parent ReconstructionLoss_Stage2, with
// configs/l1_lpips_kl_gan.yaml; the step order is train_repae.py's):
//   - discriminator: hinge, d_loss = factor · 0.5 · (mean relu(1 − D(x)) + mean relu(1 + D(x̂.detach())));
//     D(x) and D(x̂) are two separate forwards (each BatchNorm normalises with its own batch);
//     LeCam regularisation weight 0 (off in the official config, so absent here); its own AdamW (lr 1e-4, betas 0.9/0.999,
//     eps 1e-8, weight decay 0), gradient clipping 1.0, stepped right after the VAE's step.
//   - generator: g_loss = −mean D(x̂) with D's parameters frozen (requires_grad False), added to the
//     VAE loss as d_weight · factor · g_loss, factor = discriminator_factor (1.0) once
//     global_step ≥ discriminator_start (0).
//   - **d_weight is NOT adaptive in REPA-E**: the code sets d_weight = 1.0 · discriminator_weight
//     = 0.1 (its logged `d_weight` is that constant); it has no calculate_adaptive_weight. The
//     adaptive weight ‖∇_W nll‖ / (‖∇_W g‖ + 1e-4) (clamped to [0, 1e4], detached, times
//     discriminator_weight), W the decoder's last conv weight, is taming-transformers'
//     LPIPSWithDiscriminator (taming/modules/losses/vqperceptual.py, calculate_adaptive_weight),
//     from which REPA-E's loss file descends. Both are here: ganGeneratorTerm uses the fixed weight
//     unless `adaptive` is given (then taming's rule; REPA-E's decoder.conv_out.weight is our VAE's
//     `vae.decoder.conv_out.weight`).
//   - The discriminator is never put in eval mode by train_repae.py: its BatchNorm uses batch
//     statistics (and updates the running ones) in the generator pass too. These functions leave
//     the module's mode to the caller; train mode is the official behaviour.
// Freezing: D's parameters require grad only inside discriminatorStep. ganGeneratorTerm freezes
// them (and leaves them frozen: the VAE's backward runs later, and a parameter that required grad
// again by then would collect the generator's gradient), discriminatorStep unfreezes them for its
// own pass on its own tape and freezes them again, after checking that no gradient leaked in.
// RAE and SVG (methods-b §5, §6) reuse these pieces for their stage 1: the same hinge (taming's
// hinge_d_loss, with the 0.5; RAE's loss selects it by name — read in a DinoDisc-based copy, not in
// RAE's own file) and −mean D(x̂), and the adaptive weight with their constants:
//   - RAE (arXiv:2510.11690; bytetriper/RAE @a4d18c4, src/train_stage1.py per methods-b §5):
//     ‖∇nll‖ / (‖∇g‖ + 1e-6), clamped to [0, 1e4], times 0.75 → `eps: 1e-6, discWeight: 0.75`;
//     W the ViT decoder's last weight (vitDecoder.ts `decoder_pred.weight`).
//   - SVG (its autoencoder's losses/contperceptual_decoder.py, methods-b §6): taming's 1e-4, times 0.5
//     → `discWeight: 0.5` (SVG's 3-layer PatchGAN is patchGan.ts with nLayers 3).
// The clamp applies to the ratio before the weight multiplies it (taming, RAE, SVG alike).
// Not here: the discriminator (patchGan.ts), the perceptual term (perceptualLoss.ts), the wiring
// into REPA-E's VAE step (methods/repa-e/pieces.ts and index.ts, JointVae.afterUpdate); RAE's own
// discriminator (a frozen DINO-S/8 with trainable conv heads) and DiffAug.
import { tensor, type Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/tidy.ts';
import { fmtShape } from '../tensor/shape.ts';
import { Tape, backward, detach, discardTape, noGrad, withTape, currentTape } from '../autograd/tape.ts';
import { add, mean, mul, relu, sub } from '../autograd/ops/index.ts';
import { grad } from '../autograd/grad.ts';
import { AdamW, type AdamWOptions } from '../optim/adamw.ts';
import { clipGradNorm } from '../optim/clip.ts';
import type { NLayerDiscriminator } from './patchGan.ts';

//################################################################################
//                                 The two losses                                #
//################################################################################

/** Hinge loss of the discriminator: 0.5 · (mean relu(1 − real) + mean relu(1 + fake)), a scalar. */
export function hingeDLoss(logitsReal: Tensor, logitsFake: Tensor): Tensor {
  const lossReal = mean(relu(sub(tensor([1], [], logitsReal.dtype), logitsReal)));
  const lossFake = mean(relu(add(logitsFake, 1)));
  return mul(add(lossReal, lossFake), 0.5);
}

/** The generator's (non-saturating hinge) loss −mean D(x̂), a scalar. */
export function generatorLoss(logitsFake: Tensor): Tensor {
  return mul(mean(logitsFake), -1);
}

//################################################################################
//                        taming's adaptive weight (optional)                    #
//################################################################################

export interface AdaptiveWeight {
  /** clamp(‖∇nll‖ / (‖∇g‖ + eps), 0, maxWeight) · discWeight: a plain number (detached). */
  weight: number;
  nllGradNorm: number;
  gGradNorm: number;
}

const l2 = (t: Tensor): number => {
  let s = 0;
  for (let i = 0; i < t.size; i++) s += t.data[i] * t.data[i];
  return Math.sqrt(s);
};

export interface AdaptiveWeightOptions {
  /** Multiplies the clamped ratio (REPA-E 0.1 via discWeight, RAE 0.75, SVG 0.5). Default 1. */
  discWeight?: number;
  /** Added to ‖∇g‖: taming and SVG 1e-4 (the default), RAE 1e-6. */
  eps?: number;
  /** Upper clamp of the ratio: 1e4 (taming, RAE, SVG; the default). */
  maxWeight?: number;
  tape?: Tape;
}

/**
 * taming's calculate_adaptive_weight: the gradients of nll and of g with respect to `lastLayer`
 * (the decoder's last weight), taken without touching any `.grad` and keeping the graph for the
 * VAE's backward (autograd/grad.ts); d = ‖∇nll‖ / (‖∇g‖ + eps), clamped to [0, maxWeight], times
 * discWeight. Both losses must be recorded on `tape` (default: the current tape).
 */
export function adaptiveGanWeight(nll: Tensor, g: Tensor, lastLayer: Tensor, o: AdaptiveWeightOptions = {}): AdaptiveWeight {
  for (const [what, t] of [['nll', nll], ['g', g]] as const) {
    if (t.size !== 1) throw new Error(`adaptiveGanWeight: ${what} must be a scalar, got ${fmtShape(t.shape)}`);
  }
  const eps = o.eps ?? 1e-4, maxWeight = o.maxWeight ?? 1e4, discWeight = o.discWeight ?? 1;
  if (!(Number.isFinite(eps) && eps > 0)) throw new Error(`adaptiveGanWeight: eps must be a finite number > 0, got ${eps}`);
  if (!(maxWeight > 0)) throw new Error(`adaptiveGanWeight: maxWeight must be > 0, got ${maxWeight}`);
  if (!(Number.isFinite(discWeight) && discWeight >= 0)) throw new Error(`adaptiveGanWeight: discWeight must be a finite number ≥ 0, got ${discWeight}`);
  const tape = o.tape ?? currentTape();
  const [gn] = grad(nll, [lastLayer], { tape });
  const [gg] = grad(g, [lastLayer], { tape });
  const nllGradNorm = l2(gn!), gGradNorm = l2(gg!);
  const d = Math.min(Math.max(nllGradNorm / (gGradNorm + eps), 0), maxWeight);
  return { weight: d * discWeight, nllGradNorm, gGradNorm };
}

//################################################################################
//                           The generator's term (VAE side)                      #
//################################################################################

/** Set requires_grad of every parameter of D (REPA-E toggles it around each pass). */
export function setDiscriminatorTrainable(disc: NLayerDiscriminator, on: boolean): void {
  for (const p of disc.parameters()) p.requireGrad(on);
}

export interface GanGeneratorOptions {
  /** Global step, for the start of the GAN term. */
  step: number;
  /** REPA-E: discriminator_start 0. The term (and its weight) is 0 before this step. */
  discStart?: number;
  /** REPA-E: discriminator_factor 1.0. */
  discFactor?: number;
  /** REPA-E: discriminator_weight 0.1 (the whole of d_weight, which is not adaptive there). */
  discWeight?: number;
  /**
   * taming's adaptive weight instead of REPA-E's constant: `nll` the reconstruction (+ perceptual)
   * loss and `lastLayer` the decoder's last weight (vae.decoder.conv_out.weight), on `tape`.
   */
  adaptive?: { nll: Tensor; lastLayer: Tensor; tape?: Tape; eps?: number; maxWeight?: number };
}

export interface GanGeneratorTerm {
  /** () d_weight · factor · g_loss in the VAE's graph (a constant 0 when the term is off). */
  loss: Tensor;
  /** g_loss = −mean D(x̂) (0 when off). */
  gLoss: number;
  /** The weight used: discWeight, or the adaptive one (times discWeight). */
  dWeight: number;
  /** discFactor once step ≥ discStart, else 0. */
  factor: number;
  /** Gradient norms behind an adaptive weight. */
  adaptive?: AdaptiveWeight;
}

/**
 * REPA-E's generator term for the VAE loss: D frozen (left frozen, see the file comment), logits
 * D(x̂) in D's current mode, g_loss = −mean, times factor and d_weight. With discFactor or
 * discWeight 0, or before discStart, D is not run and the loss is a constant 0 (as the official).
 */
export function ganGeneratorTerm(disc: NLayerDiscriminator, recon: Tensor, o: GanGeneratorOptions): GanGeneratorTerm {
  const discWeight = o.discWeight ?? 0.1, discFactor = o.discFactor ?? 1;
  const factor = o.step >= (o.discStart ?? 0) ? discFactor : 0;
  setDiscriminatorTrainable(disc, false);
  if (!(factor > 0 && discWeight > 0)) return { loss: tensor([0], [], recon.dtype), gLoss: 0, dWeight: discWeight, factor };
  const g = generatorLoss(disc.forward(recon)); // ()
  let dWeight = discWeight, adaptive: AdaptiveWeight | undefined;
  if (o.adaptive) {
    if (!g.requiresGrad) throw new Error('ganGeneratorTerm: the adaptive weight needs a reconstruction that requires grad');
    const { nll, lastLayer, tape, eps, maxWeight } = o.adaptive;
    adaptive = adaptiveGanWeight(nll, g, lastLayer, { discWeight, tape, eps, maxWeight });
    dWeight = adaptive.weight;
  }
  return { loss: mul(g, dWeight * factor), gLoss: g.item(), dWeight, factor, ...(adaptive ? { adaptive } : {}) };
}

//################################################################################
//                            The discriminator's step                            #
//################################################################################

export interface DiscriminatorOptimizerOptions extends AdamWOptions {}

/** REPA-E's optimizer_loss_fn: AdamW lr 1e-4, betas (0.9, 0.999), eps 1e-8, weight decay 0. */
export function createDiscriminatorOptimizer(disc: NLayerDiscriminator, o: DiscriminatorOptimizerOptions = {}): AdamW {
  return new AdamW(disc.namedParameters(), { lr: 1e-4, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, ...o });
}

export interface DiscriminatorStepOptions {
  step: number;
  discStart?: number;
  discFactor?: number;
  /** REPA-E: max_grad_norm 1.0; null: no clipping. */
  maxGradNorm?: number | null;
  /** Multiplies the optimiser's lr (schedules). */
  lrScale?: number;
}

export interface DiscriminatorStepResult {
  /** factor · hinge. */
  loss: number;
  /** Mean logit on real and on reconstructed images. */
  logitsReal: number;
  logitsFake: number;
  /** Gradient norm before clipping. */
  gradNorm: number;
  factor: number;
}

/**
 * One discriminator update (REPA-E step 3): D(x) and D(x̂) as two forwards on detached inputs and
 * a tape of D's own, d_loss = factor · hinge, backward, clip, AdamW step, zero the gradients. Before
 * discStart the factor is 0 and the step still runs (zero gradients; the BatchNorm statistics move),
 * as the official loop does. Throws if D already holds a non-zero gradient (a generator pass that
 * reached D's parameters).
 */
export function discriminatorStep(disc: NLayerDiscriminator, opt: AdamW, real: Tensor, fake: Tensor, o: DiscriminatorStepOptions): DiscriminatorStepResult {
  const factor = o.step >= (o.discStart ?? 0) ? (o.discFactor ?? 1) : 0;
  for (const [name, p] of disc.namedParameters()) {
    if (p.grad && p.grad.data.some((v) => v !== 0)) throw new Error(`discriminatorStep: '${name}' already has a gradient (the generator's loss reached the discriminator)`);
  }
  const tape = new Tape();
  setDiscriminatorTrainable(disc, true);
  try {
    return tidy(() => {
      const { loss, lr, lf } = withTape(tape, () => {
        const lr = disc.forward(detach(real)); // (B, 1, h, w)
        const lf = disc.forward(detach(fake));
        return { loss: mul(hingeDLoss(lr, lf), factor), lr, lf };
      });
      backward(loss, { tape });
      const gradNorm = clipGradNorm(disc.parameters(), o.maxGradNorm === null ? Infinity : o.maxGradNorm ?? 1);
      opt.step(o.lrScale ?? 1);
      opt.zeroGrad();
      const avg = (t: Tensor): number => noGrad(() => mean(t).item());
      return { loss: loss.item(), logitsReal: avg(lr), logitsFake: avg(lf), gradNorm, factor };
    });
  } finally {
    discardTape(tape);
    setDiscriminatorTrainable(disc, false);
  }
}
