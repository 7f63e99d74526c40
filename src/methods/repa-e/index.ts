// REPA-E (Leng et al., "REPA-E: Unlocking VAE for End-to-End Tuning with Latent Diffusion
// Transformers", ICCV 2025; github.com/End2End-Diffusion/REPA-E, train_repae.py, models/sit.py):
// the VAE trains with a latent SiT. Per step, with one (t, ε):
//   VAE:  L_vae = l1·|x − x̂| + kl·KL + p·LPIPS(x, x̂) + d·(−mean D(x̂)) + c_vae · L_REPA(SiT_frozen,eval(BN(z)))
//                                                                        (z = μ + σξ, in the graph; D frozen)
//   D:    L_D = ½(mean relu(1 − D(x)) + mean relu(1 + D(sg(x̂))))   its own AdamW, right after the VAE's step
//   SiT:  L_sit = L_diff(SiT(BN_train(sg(z)))) + λ · L_REPA(h_φ(h_k), y*)
// (the official loss: loss/losses.py with configs/l1_lpips_kl_gan.yaml). The diffusion loss never
// reaches the VAE (the SiT reads z detached: stop-gradient is the absence of a message); the
// alignment loss does, through the frozen SiT and the latent BatchNorm; the discriminator's loss
// never does (x̂ detached, its own tape). LPIPS runs on a frozen stand-in for its VGG
// (docs/models/perceptual.md). The EMA averages the BN's running statistics too. Pieces: pieces.ts
// (BN SiT, the VAE's loss, decoding), models/patchGan.ts, models/ganLoss.ts, models/perceptualLoss.ts.
import { z } from 'zod';
import { flowTrainingPair, interpolate } from '../../diffusion/index.ts';
import { vaeFactor, vaePreset, createVAE, type VAEConfig } from '../../models/vae.ts';
import { loadSdVae, inferSdVaeConfig, normalizeSdVaeKeys } from '../../models/sdVae.ts';
import { readSafetensors } from '../../io/safetensors.ts';
import { BatchNorm2d } from '../../nn/batchNorm.ts';
import { PATCHGAN_PRESETS, createPatchGan, patchGanPreset } from '../../models/patchGan.ts';
import { createDiscriminatorOptimizer } from '../../models/ganLoss.ts';
import { sectionPerceptualNet } from '../../models/perceptualFile.ts';
import type { Backbone, MethodDefinition, VaeLossContext } from '../method.ts';
import { hiddenAfterBlock } from '../partialForward.ts';
import { ProjectorHeads, singleProjector } from '../projectorHeads.ts';
import { repaProjLoss } from '../repa/loss.ts';
import { RepaESiT, createRepaESiT, decodeLatentSamples, discriminatorUpdate, initLatentBn, repaeEmaTensors, repaeVaeLoss, type RepaELossParts } from './pieces.ts';

const positiveInt = z.number().int().positive();

export const RepaESection = z.strictObject({
  /** 1-based block whose output the projector reads (train_repae.py `--encoder-depth` 8 of 28 for SiT-XL). */
  encoder_depth: positiveInt.default(2),
  projector_dim: positiveInt.default(512),
  /** λ of L_REPA in the SiT's loss (`--proj-coeff` 0.5). */
  proj_coeff: z.number().min(0).default(0.5),
  /** λ of L_REPA in the VAE's loss (`--vae-align-proj-coeff` 1.5). */
  vae_align_coeff: z.number().min(0).default(1.5),
  /**
   * The VAE's AdamW learning rate (`--vae-learning-rate` 1e-4; betas, weight decay and the
   * schedule's factor come from train). 0 freezes the VAE: REPA in a fixed latent space, the control.
   */
  vae_lr: z.number().min(0).default(1e-4),
  /** Weight of mean |x − x̂| (1.0). */
  l1_weight: z.number().min(0).default(1.0),
  /** Weight of KL(q(z|x) ‖ N(0, I)) summed over latent elements, averaged over the batch (1e-6). */
  kl_weight: z.number().min(0).default(1e-6),
  /**
   * Weight of the perceptual term, the batch mean of LPIPS(x, x̂) (`perceptual_weight` 1.0 in
   * configs/l1_lpips_kl_gan.yaml). LPIPS' ImageNet VGG-16 and its learned channel weights cannot be
   * had here: the same distance runs on `perceptual_net`, a frozen stand-in. 0: no term, no net loaded.
   */
  perceptual_weight: z.number().min(0).default(1.0),
  /**
   * The frozen feature net standing in for LPIPS' VGG-16 (a perceptual-net safetensors file,
   * docs/models/perceptual.md). null: the one shipped for the run's dataset (after --data):
   * builtin → specs/standins/perceptual-builtin.safetensors, fashion-mnist →
   * perceptual-fashion-mnist.safetensors; any other dataset must name a file.
   */
  perceptual_net: z.string().min(1).nullable().default(null),
  /**
   * Weight of the generator term −mean D(x̂) (`discriminator_weight` 0.1; REPA-E uses it as the
   * whole d_weight, not taming's adaptive weight). 0: no discriminator is built or trained.
   */
  disc_weight: z.number().min(0).default(0.1),
  /** 0-based step from which the GAN terms count (`discriminator_start` 0): before it the generator term is 0 and D steps on a zero loss. */
  disc_start: z.number().int().min(0).default(0),
  /**
   * The PatchGAN discriminator (models/patchGan.ts): 'PatchGAN-S' (ndf 32, 2 layers: 6×6 logits of
   * 34-px patches on 32×32) sized for the small images here; 'PatchGAN-official' is REPA-E's (ndf 64,
   * 3 layers, 2.8 M parameters: 2×2 logits on 32×32); 'PatchGAN-T' for tests. BatchNorm in train mode
   * throughout, as the official loop never switches it.
   */
  disc: z.enum(Object.keys(PATCHGAN_PRESETS) as [string, ...string[]]).default('PatchGAN-S'),
  /**
   * The discriminator's AdamW learning rate (`--disc-learning-rate` 1e-4). Its betas, weight decay
   * and gradient clipping are train's (the official shares `--adam-beta1/2`, `--adam-weight-decay`
   * and `--max-grad-norm` 1.0 among its three optimisers), and it follows the schedule as the VAE does.
   */
  disc_lr: z.number().min(0).default(1e-4),
  /** The latent BatchNorm2d (affine false, models/sit.py): running-stat momentum and eps. */
  bn_momentum: z.number().gt(0).max(1).default(0.1),
  bn_eps: z.number().positive().default(1e-4),
  /** VAE preset (models/vae.ts: VAE-P is f4, VAE-T a tiny f4); default VAE-P. With vae_checkpoint it must match the file. */
  vae: z.string().min(1).optional(),
  /** Latent channels; default 4. With vae_checkpoint it must match the file. */
  latent_channels: positiveInt.optional(),
  /**
   * A diffusers AutoencoderKL safetensors file (loadSdVae) to start from. null: a VAE of `vae`
   * initialised from the run's seed. Its scaling/shift factors initialise the BN running stats.
   */
  vae_checkpoint: z.string().min(1).nullable().default(null),
});
export type RepaESection = z.infer<typeof RepaESection>;

/** The VAE's config: the file's (read from its shapes and metadata) or the preset fitted to the data; either must fit the data. */
function vaeConfig(s: RepaESection, data: { channels: number; height: number }, name: string): VAEConfig {
  let c: VAEConfig;
  if (s.vae_checkpoint) {
    let file: ReturnType<typeof readSafetensors>;
    try {
      file = readSafetensors(s.vae_checkpoint);
    } catch (e) {
      throw new Error(`spec '${name}': repa_e.vae_checkpoint ${s.vae_checkpoint}: ${(e as Error).message}`);
    }
    c = inferSdVaeConfig(normalizeSdVaeKeys(file.tensors), file.metadata);
    if (c.inChannels !== data.channels || c.outChannels !== data.channels) {
      throw new Error(`spec '${name}': repa_e.vae_checkpoint ${s.vae_checkpoint} maps ${c.inChannels} -> ${c.outChannels} channels but the data has ${data.channels}`);
    }
    const shape = (v: VAEConfig) => `blocks [${v.blockOutChannels.join(', ')}] × ${v.layersPerBlock}`;
    if (s.vae !== undefined && shape(vaePreset(s.vae)) !== shape(c)) {
      throw new Error(`spec '${name}': repa_e.vae ${s.vae} has ${shape(vaePreset(s.vae))} but repa_e.vae_checkpoint ${s.vae_checkpoint} holds ${shape(c)}`);
    }
    if (s.latent_channels !== undefined && s.latent_channels !== c.latentChannels) {
      throw new Error(`spec '${name}': repa_e.latent_channels is ${s.latent_channels} but repa_e.vae_checkpoint ${s.vae_checkpoint} has ${c.latentChannels}`);
    }
  } else {
    try {
      c = vaePreset(s.vae ?? 'VAE-P', { inChannels: data.channels, outChannels: data.channels, latentChannels: s.latent_channels ?? 4 });
    } catch (e) {
      throw new Error(`spec '${name}': repa_e.vae / repa_e.latent_channels: ${(e as Error).message}`);
    }
  }
  const f = vaeFactor(c);
  if (data.height % f !== 0) {
    throw new Error(`spec '${name}': repa_e.${s.vae_checkpoint ? 'vae_checkpoint' : 'vae'} downsamples by ${f} but data.size is ${data.height} (not a multiple)`);
  }
  return c;
}

/** The PatchGAN (train mode) and its AdamW, or null with disc_weight 0. */
function discriminator(s: RepaESection, c: VaeLossContext) {
  if (s.disc_weight === 0) return null;
  const module = createPatchGan(patchGanPreset(s.disc, { inChannels: c.channels }), c.seed).train();
  const t = c.train;
  return { module, opt: createDiscriminatorOptimizer(module, { lr: s.disc_lr, betas: [t.beta1, t.beta2], weightDecay: t.weight_decay }) };
}

const asRepaE = (m: Backbone): RepaESiT => {
  if (!(m instanceof RepaESiT)) throw new Error('repa-e: expected the SiT with the latent BatchNorm');
  return m;
};

const align = {
  name: 'proj',
  tap: (s: RepaESection) => s.encoder_depth,
  weight: (s: RepaESection) => s.proj_coeff,
  loss: (_s: RepaESection, heads: unknown, h: import('../../tensor/tensor.ts').Tensor, tg: { feats: { patch: import('../../tensor/tensor.ts').Tensor } | null }) =>
    repaProjLoss([{ pred: (heads as ProjectorHeads).projector().forward(h), target: tg.feats!.patch }]),
};

export const repaE: MethodDefinition<RepaESection> = {
  name: 'repa-e',
  title: 'REPA-E',
  cite: 'Leng et al., REPA-E, ICCV 2025 — github.com/End2End-Diffusion/REPA-E (train_repae.py, models/sit.py)',
  section: { key: 'repa_e', schema: RepaESection },
  reads: ['encoder'],
  changes: ['input', 'backbone'],
  streams: ['posterior'],
  blocks: (s) => ({ 'repa_e.encoder_depth': s.encoder_depth }),
  files: (s) => ({ 'repa_e.vae_checkpoint': s.vae_checkpoint, 'repa_e.perceptual_net': s.perceptual_net }),
  heads: (s, c) => singleProjector(c, s.projector_dim, 'repa-e'),
  taps: (s) => [s.encoder_depth],
  backbone: {
    build: (s, c, seed) => {
      if (!c.vaeConfig) throw new Error('repa-e: the backbone needs the VAE config (its latent stats initialise the BN)');
      const m = createRepaESiT(c.config, seed, { eps: s.bn_eps, momentum: s.bn_momentum });
      // Diffusion sees (z − shift)·scale; a seed-initialised VAE (scale 1, shift 0) gives BN's defaults.
      initLatentBn(m.bn, { bias: c.vaeConfig.shiftFactor, scale: c.vaeConfig.scalingFactor });
      return m;
    },
    fromWeights: (s, c) => createRepaESiT(c.config, 0, { eps: s.bn_eps, momentum: s.bn_momentum }),
    // Train mode: the BN normalises with the batch's statistics and updates its running ones (step 4).
    forward: (_s, model, b, path, dropout) => {
      const m = asRepaE(model);
      m.train();
      const { xt, target } = flowTrainingPair(path, m.bn.forward(b.input), b.eps, b.t);
      const o = m.forward(xt, b.t, b.y, { rng: dropout, taps: b.taps });
      return { out: o.out, target, hidden: o.hidden, labels: o.labels, terms: {} };
    },
    emaTensors: (model) => repaeEmaTensors(asRepaE(model)),
    emaCopied: (model) => [['bn.num_batches_tracked', asRepaE(model).bn.num_batches_tracked!]],
    // SiT_align_only: the caller has the model in eval mode (the BN on its running statistics).
    hidden: (_s, model, b, block, path) => {
      const m = asRepaE(model);
      return hiddenAfterBlock(m, interpolate(path, m.bn.forward(b.input), b.eps, b.t), b.t, b.y, block);
    },
    // The EMA SiT samples in BN-normalised space with the BN skipped (`inference()`): a plain SiT.
    sampleWeights: (_s, ema) => new Map([...ema].filter(([k]) => !k.startsWith('bn.'))),
  },
  alignTerms: [align],
  vae: {
    stream: 'posterior',
    config: vaeConfig,
    build: (s, config, seed) => (s.vae_checkpoint ? loadSdVae(s.vae_checkpoint) : createVAE(config, seed)).train(),
    lr: (s) => s.vae_lr,
    lossParts: (s, c): RepaELossParts => ({ perceptual: sectionPerceptualNet('repa_e', s, c.dataset, c.channels), disc: discriminator(s, c), gradClip: c.train.grad_clip }),
    // train_repae.py's global_step is 0 in the first step: ours is 1-based.
    regularizer: (s, x, recon, post, parts: RepaELossParts, step) => {
      const r = repaeVaeLoss(x, recon, post, {
        l1: s.l1_weight, kl: s.kl_weight, perceptual: s.perceptual_weight, disc: s.disc_weight, discStart: s.disc_start,
      }, parts, step - 1);
      return {
        loss: r.loss,
        terms: { vae_l1: r.l1, vae_kl: r.kl, ...(r.lpips !== undefined && { vae_lpips: r.lpips }), ...(r.gan !== undefined && { vae_gan: r.gan }) },
      };
    },
    afterUpdate: (s, parts: RepaELossParts, x, recon, step, lrFactor): Record<string, number> => {
      if (!parts.disc) return {};
      const d = discriminatorUpdate(parts, x, recon, { globalStep: step - 1, discStart: s.disc_start, lrFactor });
      return { disc_loss: d.loss };
    },
    alignCoeff: (s) => s.vae_align_coeff,
    alignTerm: align,
    decode: (s, vae, ema, samples, n, side) => {
      const rm = ema.get('bn.running_mean'), rv = ema.get('bn.running_var');
      if (!rm || !rv) throw new Error('repa-e: the EMA weights lack the latent BN buffers bn.running_mean / bn.running_var');
      const bn = new BatchNorm2d(rm.size, { eps: s.bn_eps, affine: false });
      bn.running_mean!.data.set(rm.data);
      bn.running_var!.data.set(rv.data);
      return decodeLatentSamples(vae, bn.eval(), samples, n, side);
    },
  },
};
