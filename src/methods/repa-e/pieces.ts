// REPA-E's pure pieces (Leng et al., ICCV 2025; github.com/End2End-Diffusion/REPA-E train_repae.py, models/sit.py): the latent SiT with its BatchNorm,
// the BN helpers (init_bn / extract_latents_stats / the inverse of the eval transform), the VAE's
// loss (L1 + KL + perceptual + the generator's GAN term, loss/losses.py) and the discriminator's
// update, the alignment-only forward through blocks 1..k, the two halves of the VAE step's
// gradient and the SiT's loss. Each half touches one side's parameters only, so a VAE actor and a
// Student actor can each run theirs and exchange z and ∂L/∂z:
//   Student: vaeAlignGrad(model, projector, z, t, ε, y, y*) -> g = ∂(c·L_REPA)/∂z, SiT frozen, BN eval
//   VAE:     repaeVaeLoss(x, x̂, posterior, parts), then vaeBackward(reg, z, g)   (the only gradient into the VAE)
//            then discriminatorUpdate(parts, x, x̂) on x̂ detached (invariant (h): D's loss never reaches the VAE)
//   Student: repaeSitLoss(model, projector, z.detach(), t, ε, y, y*)    (BN train: batch stats + update)
// LPIPS runs on a frozen stand-in for its pretrained VGG (docs/models/perceptual.md); the
// discriminator is taming's PatchGAN (models/patchGan.ts). Not here: the order of the step and the
// optimisers (run/reference.ts, protocols/compose.ts), the VAE (models/vae.ts), the projector.
import { ones, tensor, type Tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { Tape, backward, detach, discardTape, noGrad, withTape } from '../../autograd/tape.ts';
import { abs, add, gaussianKL, mean, mul, sub } from '../../autograd/ops/index.ts';
import { BatchNorm2d } from '../../nn/batchNorm.ts';
import { SiT } from '../../models/sit.ts';
import type { SiTConfig } from '../../models/config.ts';
import type { Projector } from '../../models/projector.ts';
import { vaeFactor, type Posterior, type VAE } from '../../models/vae.ts';
import { flowTrainingPair, interpolate, velocityLoss, type Interpolant } from '../../diffusion/index.ts';
import type { Module } from '../../nn/module.ts';
import type { AdamW } from '../../optim/adamw.ts';
import type { PerceptualNet } from '../../models/perceptualNet.ts';
import { perceptualLoss } from '../../models/perceptualLoss.ts';
import type { NLayerDiscriminator } from '../../models/patchGan.ts';
import { discriminatorStep, ganGeneratorTerm } from '../../models/ganLoss.ts';
import { hiddenAfterBlock } from '../partialForward.ts';
import { repaProjLoss, repaTotalLoss } from '../repa/loss.ts';
import type { VaeLossParts } from '../method.ts';

//################################################################################
//                         The latent SiT and its BatchNorm                      #
//################################################################################

export interface LatentBnOptions { eps: number; momentum: number }

/**
 * A SiT that owns REPA-E's latent BatchNorm2d(C, affine=False, track_running_stats=True) as `bn`
 * (state_dict `bn.running_mean`, `bn.running_var`, `bn.num_batches_tracked`, as in REPA-E's
 * models/sit.py). forward is the plain SiT on already-normalised latents (REPA-E's `inference()`
 * skips the BN); the training pieces below apply `bn` themselves, in the mode the step asks for.
 * The SiT's weights equal createSiT(config, seed)'s: the BN draws nothing.
 */
export class RepaESiT extends SiT {
  readonly bn: BatchNorm2d;
  constructor(config: SiTConfig, rng: Rng, bn: LatentBnOptions) {
    super(config, rng);
    this.bn = this.child('bn', new BatchNorm2d(this.config.inChannels, { eps: bn.eps, momentum: bn.momentum, affine: false }));
  }
}

/**
 * A fresh REPA-E SiT. Its BN starts at PyTorch's defaults (running mean 0, variance 1); the trainer
 * then calls initLatentBn with the VAE's latent stats when it has them (methodParts.buildBackbone:
 * a VAE file's shift/scaling factors; a seed-initialised VAE's are 0 / 1, i.e. unknown).
 */
export function createRepaESiT(config: SiTConfig, seed: number, bn: LatentBnOptions): RepaESiT {
  return new RepaESiT(config, new Rng(seed).child('model'), bn);
}

/** Per-channel latent statistics: diffusion sees (z − bias)·scale. A number applies to every channel. */
export interface LatentStats { bias: ArrayLike<number> | number; scale: ArrayLike<number> | number }

const perChannel = (v: ArrayLike<number> | number, c: number, what: string): Float64Array => {
  if (typeof v === 'number') return new Float64Array(c).fill(v);
  if (v.length !== c) throw new Error(`latent stats: ${what} has ${v.length} entries for ${c} latent channels`);
  return Float64Array.from(v);
};

/** REPA-E's init_bn: running_mean = bias, running_var = 1 / scale² (the VAE's precomputed latent stats). */
export function initLatentBn(bn: BatchNorm2d, stats: LatentStats): void {
  const c = bn.numFeatures, bias = perChannel(stats.bias, c, 'bias'), scale = perChannel(stats.scale, c, 'scale');
  for (let i = 0; i < c; i++) {
    if (!(scale[i] > 0)) throw new Error(`initLatentBn: scale of channel ${i} must be > 0, got ${scale[i]}`);
    bn.running_mean!.data[i] = bias[i];
    bn.running_var!.data[i] = 1 / (scale[i] * scale[i]);
  }
}

/** REPA-E's extract_latents_stats: bias = running_mean, scale = 1 / √(running_var + eps) (what BN eval multiplies by). */
export function latentStats(bn: BatchNorm2d): { bias: Float64Array; scale: Float64Array } {
  const c = bn.numFeatures, bias = new Float64Array(c), scale = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    bias[i] = bn.running_mean!.data[i];
    scale[i] = 1 / Math.sqrt(bn.running_var!.data[i] + bn.eps);
  }
  return { bias, scale };
}

/**
 * The inverse of BN's eval transform x = (z − rm)/√(rv + eps): z = x·√(rv + eps) + rm, per channel
 * of x (N, C, *). Sampling de-normalises with the EMA model's buffers before decoding.
 */
export function denormalizeLatent(x: Tensor, bn: BatchNorm2d): Tensor {
  const c = bn.numFeatures;
  if (x.ndim < 2 || x.shape[1] !== c) throw new Error(`denormalizeLatent: expected (N, ${c}, *), got ${fmtShape(x.shape)}`);
  const { bias, scale } = latentStats(bn);
  const bshape = [1, c, ...x.shape.slice(2).map(() => 1)];
  return add(mul(x, tensor(Array.from(scale, (s) => 1 / s), bshape, x.dtype)), tensor(bias, bshape, x.dtype));
}

/**
 * The tensors the EMA averages: every SiT parameter and the BN's float buffers (running mean and
 * variance), invariant (i). num_batches_tracked is a counter, copied (copyBnCounter), not averaged.
 */
export function repaeEmaTensors(m: RepaESiT): [string, Tensor][] {
  return [...m.namedParameters(), ['bn.running_mean', m.bn.running_mean!], ['bn.running_var', m.bn.running_var!]];
}

export function copyBnCounter(ema: RepaESiT, model: RepaESiT): void {
  ema.bn.num_batches_tracked!.data[0] = model.bn.num_batches_tracked!.data[0];
}

//################################################################################
//                                The VAE's half                                 #
//################################################################################

export interface VaeRegWeights { l1: number; kl: number }

export interface VaeRegLoss {
  /** () l1·L1 + kl·KL, in the VAE's graph. */
  loss: Tensor;
  /** mean |x − x̂| over every element. */
  l1: number;
  /** KL(q(z|x) ‖ N(0, I)) summed over a sample's latent elements, averaged over the batch (official). */
  kl: number;
}

/** The VAE's L1 and KL terms (the part of the official loss that needs no other network). */
export function vaeRegLoss(x: Tensor, recon: Tensor, posterior: Pick<Posterior, 'mean' | 'logvar'>, w: VaeRegWeights): VaeRegLoss {
  if (x.ndim !== recon.ndim || x.shape.some((d, i) => d !== recon.shape[i])) {
    throw new Error(`vaeRegLoss: image ${fmtShape(x.shape)} and reconstruction ${fmtShape(recon.shape)} differ`);
  }
  const l1 = mean(abs(sub(recon, x))); // ()
  const kl = gaussianKL(posterior.mean, posterior.logvar); // () sum over (C, h, w), mean over B
  return { loss: add(mul(l1, w.l1), mul(kl, w.kl)), l1: l1.item(), kl: kl.item() };
}

export interface RepaELossParts extends VaeLossParts {
  /** The frozen stand-in for LPIPS' VGG (eval mode); null with perceptual_weight 0. */
  perceptual: PerceptualNet | null;
  /** The PatchGAN (train mode) and its own AdamW; null with disc_weight 0. */
  disc: { module: NLayerDiscriminator; opt: AdamW } | null;
  /** Max gradient norm of the discriminator's step (train.grad_clip; official max_grad_norm 1.0). */
  gradClip: number;
}

export interface RepaEVaeWeights extends VaeRegWeights {
  /** perceptual_weight (1.0). */
  perceptual: number;
  /** discriminator_weight (0.1), the fixed d_weight. */
  disc: number;
  /** discriminator_start (0), compared with the 0-based global step. */
  discStart: number;
}

export interface RepaEVaeLoss extends VaeRegLoss {
  /** LPIPS(x, x̂) on the stand-in net, batch mean, before its weight (absent without the net). */
  lpips?: number;
  /** g_loss = −mean D(x̂) before its weight, 0 before discStart (absent without a discriminator). */
  gan?: number;
}

/**
 * REPA-E's VAE loss before the alignment term (loss/losses.py, ReconstructionLoss_Single_Stage in
 * "generator" mode): l1·mean|x − x̂| + kl·KL + perceptual·mean LPIPS(x, x̂) + disc·factor·(−mean D(x̂)),
 * factor 1 once globalStep ≥ discStart. D runs in its current (train) mode with its parameters
 * frozen, so its BatchNorm statistics move and nothing of this loss reaches its weights. A part
 * that is null adds nothing: with neither, the loss is vaeRegLoss's, bit for bit.
 */
export function repaeVaeLoss(x: Tensor, recon: Tensor, posterior: Pick<Posterior, 'mean' | 'logvar'>, w: RepaEVaeWeights, parts: RepaELossParts, globalStep: number): RepaEVaeLoss {
  const r: RepaEVaeLoss = vaeRegLoss(x, recon, posterior, w);
  if (parts.perceptual) {
    const p = perceptualLoss(parts.perceptual, x, recon); // ()
    r.loss = add(r.loss, mul(p, w.perceptual));
    r.lpips = p.item();
  }
  if (parts.disc) {
    const g = ganGeneratorTerm(parts.disc.module, recon, { step: globalStep, discStart: w.discStart, discWeight: w.disc });
    r.loss = add(r.loss, g.loss);
    r.gan = g.gLoss;
  }
  return r;
}

/**
 * The discriminator's step (train_repae.py, right after the VAE's): hinge loss on D(x) and D(x̂)
 * (two forwards, x̂ detached, on a tape of its own), clip, its AdamW at the schedule's factor. D's
 * gradient never reaches the VAE; the step refuses a D that already holds a gradient.
 */
export function discriminatorUpdate(parts: RepaELossParts, x: Tensor, recon: Tensor, o: { globalStep: number; discStart: number; lrFactor: number }): { loss: number; logitsReal: number; logitsFake: number } {
  if (!parts.disc) throw new Error('discriminatorUpdate: this run has no discriminator (disc_weight 0)');
  const r = discriminatorStep(parts.disc.module, parts.disc.opt, x, recon, { step: o.globalStep, discStart: o.discStart, maxGradNorm: parts.gradClip, lrScale: o.lrFactor });
  return { loss: r.loss, logitsReal: r.logitsReal, logitsFake: r.logitsFake };
}

/**
 * Backward of the VAE's loss reg + c·L_REPA (reg = repaeVaeLoss's) given g = ∂(c·L_REPA)/∂z from the Student:
 * one backward over the VAE's graph seeded with the regulariser (1) and z (g). The diffusion loss
 * sends nothing here: the SiT's step reads z detached.
 */
export function vaeBackward(reg: Tensor, z: Tensor, g: Tensor): void {
  backward([[reg, ones(reg.shape, reg.dtype)], [z, g]]);
}

//################################################################################
//                              The Student's half                               #
//################################################################################

export interface AlignOptions {
  /** The 1-based block the projector reads. */
  depth: number;
  path: Interpolant;
}

/**
 * SiT_align_only (REPA-E models/sit.py with align_only): x̄ = bn(z) in the BN's current mode,
 * x_t = α(t)·x̄ + σ(t)·ε, blocks 1..depth on the labels as given (no dropout: the SiT is in eval
 * mode in the VAE step), projector, L_REPA = −mean cos against the encoder tokens (B, T, Dz).
 */
export function alignOnlyLoss(
  model: RepaESiT, projector: Projector, z: Tensor, t: ArrayLike<number>, eps: Tensor,
  labels: ArrayLike<number>, target: Tensor, o: AlignOptions,
): Tensor {
  const xbar = model.bn.forward(z); // (B, C, h, w)
  const xt = interpolate(o.path, xbar, eps, t); // (B, C, h, w)
  const h = hiddenAfterBlock(model, xt, t, labels, o.depth); // (B, T, D)
  return repaProjLoss([{ pred: projector.forward(h), target }]);
}

/** Run fn with these modules' parameters frozen (requires_grad False), restoring them after. */
function withFrozen<T>(modules: Module[], fn: () => T): T {
  const ps = modules.flatMap((m) => m.parameters());
  const was = ps.map((p) => p.requiresGrad);
  for (const p of ps) p.requireGrad(false);
  try { return fn(); } finally { ps.forEach((p, i) => p.requireGrad(was[i])); }
}

export interface AlignGrad {
  /** L_REPA of the VAE step (before the coefficient). */
  loss: number;
  /** (B, C, h, w) ∂(coeff·L_REPA)/∂z. */
  grad: Tensor;
}

/**
 * The Student's part of the VAE step: SiT and projector frozen and in eval mode (the BN normalises
 * with its running stats and leaves them unchanged), z taken as a fresh leaf, coeff·L_REPA
 * backpropagated on a tape of its own to z only. Restores the modules' modes and flags.
 */
export function vaeAlignGrad(
  model: RepaESiT, projector: Projector, z: Tensor, t: ArrayLike<number>, eps: Tensor,
  labels: ArrayLike<number>, target: Tensor, o: AlignOptions & { coeff: number },
): AlignGrad {
  const modes = [model.training, projector.training];
  model.eval();
  projector.eval();
  try {
    return withFrozen([model, projector], () => {
      const leaf = detach(z).requireGrad(); // (B, C, h, w)
      const tape = new Tape();
      try {
        const loss = withTape(tape, () => alignOnlyLoss(model, projector, leaf, t, eps, labels, target, o));
        backward(withTape(tape, () => mul(loss, o.coeff)), { tape });
        if (!leaf.grad) throw new Error('vaeAlignGrad: no gradient reached the latent');
        return { loss: loss.item(), grad: leaf.grad };
      } finally {
        discardTape(tape); // already cleared by backward unless something threw
      }
    });
  } finally {
    model.train(modes[0]);
    projector.train(modes[1]);
  }
}

export interface SitLoss {
  /** () diff + proj_coeff·proj. */
  loss: Tensor;
  diff: number;
  proj: number;
}

/**
 * The SiT's loss on the detached latent (REPA-E step 4): the SiT must be in train mode, so x̄ =
 * bn(z) uses the batch's statistics and updates the running ones; x_t and v* = dα·x̄ + dσ·ε (ε − x̄
 * on the linear path) with the VAE step's (t, ε); MSE velocity + coeff·L_REPA on block `depth`.
 */
export function repaeSitLoss(
  model: RepaESiT, projector: Projector, z: Tensor, t: ArrayLike<number>, eps: Tensor,
  labels: ArrayLike<number>, dropout: Rng, target: Tensor, o: AlignOptions & { coeff: number },
): SitLoss {
  if (!model.training) throw new Error('repaeSitLoss: the SiT must be in train mode (BN batch statistics)');
  if (z.requiresGrad) throw new Error('repaeSitLoss: z must be detached (the diffusion loss never reaches the VAE)');
  const xbar = model.bn.forward(z); // (B, C, h, w), no gradient
  const { xt, target: v } = flowTrainingPair(o.path, xbar, eps, t);
  const { out, hidden } = model.forward(xt, t, labels, { rng: dropout, taps: [o.depth] });
  const diff = velocityLoss(out, v).loss;
  const proj = repaProjLoss([{ pred: projector.forward(hidden.get(o.depth)!), target }]);
  return { loss: repaTotalLoss(diff, proj, o.coeff), diff: diff.item(), proj: proj.item() };
}

//################################################################################
//                                   Sampling                                    #
//################################################################################

/**
 * Images from samples in BN-normalised latent space (N·C·h·w values): de-normalise with the BN
 * buffers given (the EMA model's), decode with the VAE, in batches, no gradient. (N, C_img, H, W).
 */
export function decodeLatentSamples(vae: VAE, bn: BatchNorm2d, latents: Float32Array, n: number, side: number, batch = 50): Float32Array {
  const c = bn.numFeatures, per = c * side * side;
  if (latents.length !== n * per) throw new Error(`decodeLatentSamples: ${latents.length} values for ${n} latents of ${c}×${side}×${side}`);
  const f = vaeFactor(vae.config), img = vae.config.outChannels * (side * f) ** 2;
  const out = new Float32Array(n * img);
  noGrad(() => {
    for (let i = 0; i < n; i += batch) {
      const b = Math.min(batch, n - i);
      const x = tensor(latents.subarray(i * per, (i + b) * per), [b, c, side, side]);
      out.set(vae.decode(denormalizeLatent(x, bn)).data, i * img);
    }
  });
  return out;
}
