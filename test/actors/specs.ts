// Tiny specs of every protocol for the actor tests (built-in data at 16 px, a 2-block SiT), so a
// 20-step run on worker threads takes seconds.
import { fileURLToPath } from 'node:url';
import { parseSpec } from '../../src/spec/load.ts';
import type { RunSpec } from '../../src/spec/schema.ts';
import { SHAPE_CLASSES } from '../../src/data/shapes.ts';

/** The stage-1 model the tiny SoftREPA spec loads (written by test/fixtures/make_softrepa_init.ts). */
export const SOFTREPA_TINY_INIT = fileURLToPath(new URL('../fixtures/softrepa/tiny-pretrain.safetensors', import.meta.url));

const base = {
  seed: 5,
  data: { dataset: 'builtin', size: 16, builtin_count: 96 },
  model: { preset: 'SiT-S/4', hidden_size: 32, depth: 3, num_heads: 2 },
  diffusion: { path: 'linear', objective: 'velocity' },
  train: { steps: 20, batch_size: 8, lr: 1e-3, checkpoint_every: 10, log_every: 1, warmup_steps: 3, schedule: 'cosine', ema_decay: 0.9, grad_clip: 0.5 },
  sample: { sampler: 'euler', steps: 2, per_class: 1 },
};
const encoder = { preset: 'ViT-T/4', embed_dim: 16, depth: 1, num_heads: 2 };

/** The methods the invariants tests trace one by one (their expectations are written per method). */
export const ACTOR_PROTOCOLS = ['sit-baseline', 'dit-baseline', 'repa', 'sra', 'reg', 'repa-e'] as const;

/** Each registered method's tiny sections; a method without an entry here fails the registry tests. */
export const TINY: Record<string, Record<string, unknown>> = {
  'sit-baseline': {},
  'dit-baseline': { diffusion: { objective: 'ddpm' }, sample: { sampler: 'ddim', steps: 2, per_class: 1 } },
  repa: { encoder, repa: { encoder_depth: 1, projector_dim: 24 } },
  sra: { sra: { student_block: 1, teacher_block: 2, loss: 'sml1', steps_per_epoch: 4, decay_start_epoch: 0, decay_epochs: 2, weight_schedule: 'epoch-decay' } },
  reg: { encoder, reg: { encoder_depth: 1, projector_dim: 24 }, sample: { sampler: 'sde', steps: 3, per_class: 1, cfg: 1.5, cls_cfg: 1.5 } },
  // 16 px → VAE f4 → 4×4×4 latents, patch 1: 16 tokens, like the encoder's patch 4 on 16 px. The
  // VAE's full loss (L1, KL, the builtin perceptual stand-in, the GAN term) with the tiny PatchGAN.
  'repa-e': {
    encoder, model: { ...base.model, preset: 'SiT-S/1' },
    repa_e: { encoder_depth: 1, projector_dim: 24, vae: 'VAE-T', vae_lr: 1e-3, disc: 'PatchGAN-T', disc_lr: 1e-3 },
  },
  layersync: { layersync: { student_block: 1, teacher_block: 3 } },
  // 16 px, patch 4: a 4×4 grid, one block each side of a 2×2 middle block; the 2×2 middle is
  // aligned to the encoder's 4×4 tokens after the projector and a bilinear ×2.
  'u-repa': { encoder, u_repa: { stage_blocks: 1, mid_blocks: 1, projector_dim: 24 } },
  // Stage 2: soft tokens before block 1 of the frozen caption SiT that
  // test/fixtures/make_softrepa_init.ts trained 40 steps on these sections (stage 'pretrain');
  // captions of the builtin shapes, B² = 64 pairs per step.
  softrepa: { softrepa: { stage: 'soft', init: SOFTREPA_TINY_INIT, soft_layers: 1, soft_tokens: 2, text_dim: 8, class_names: [...SHAPE_CLASSES] } },
  // 16 px, patch 4: the encoder's 4×4 tokens → 2 PCA channels fitted on 32 images, bilinear ×4 to
  // 16×16 beside the image; half the batches drop their features; sampling with RG 1.5.
  // 3 blocks cut after block 1 and 2: K = 3 branches, two VeRA blocks (ACC_MLP width 16), β 0.05.
  deepflow: { deepflow: { branch_blocks: [1, 2], branch_weights: [0.2, 0.3], time_gap: 0.05, acc_hidden: 16 } },
  redi: { encoder, redi: { rank: 2, drop_prob: 0.5, rg_scale: 1.5, pca_images: 32 } },
  // 3 DDT blocks: encoder 2 (the default ⌊2·3/3⌋), decoder 1; head dim 16 for the 2-D RoPE; the
  // Euler sampler shares the encoder over 2 steps.
  ddt: { ddt: { share_period: 2 } },
  // 16 px, patch 4: the encoder's 4×4 tokens → 8 k-means codes fitted on 32 images (512 rows,
  // 5 Lloyd iterations); the 3-block SiT section sizes the GPT (width 32, 2 heads) over 16 codes;
  // a width-8 decoder renders 16 px; sampling with top-k 4 and top-p 0.9.
  digit: { encoder, digit: { codes: 8, kmeans_images: 32, kmeans_iters: 5, top_k: 4, top_p: 0.9, decoder_embed: 8, decoder_width: 8 } },
  // RAE stage 1: the encoder's 4×4×16 tokens → a 3-block ViT decoder of width 32 (patch 4) → 16 px;
  // D (the tiny PatchGAN) trains from step 2, the adaptive GAN term counts from step 3.
  rae: { encoder, rae: { disc: 'PatchGAN-T', disc_start: 2, gan_start: 3, ref_per_class: 2 } },
  // RAE stage 2 in pixel space (the mechanism is the latent's business): 16 px, patch 1, a 3-block
  // body of width 32 and a head of width 16 (≥ 3 channels), 1 block, 2 heads; shift √(3·16·16/256) = √3.
  'dit-dh': { model: { ...base.model, preset: 'SiT-S/1' }, diffusion: { path: 'linear', objective: 'velocity', time_sampling: 'logit-normal' }, dit_dh: { head_width: 16, head_depth: 1, head_heads: 2 } },
  // EPG stage 2 on a seed-initialised encoder (stage 1 is test/run/epg.test.ts's): the 3-block
  // encoder of width 32 on 16 px (patch 4: CLS, time and 16 patch tokens), 2 decoder blocks with
  // long skips; its own Euler sampler on the Karras grid ×16/64. A 64-point fine-tuning grid: at
  // 1280 points the loss weights 1/(σ_i − σ_{i+1}) reach ~1e5 and the two engines' float32 sums
  // drift to 1.2e-6 relative in 20 steps (one step agrees to 1e-6 at either size).
  epg: { epg: { stage: 'diffusion', decoder_depth: 2, finetune_points: 64 } },
  // UniFlow's tokenizer: the student is a copy of the 1-block encoder (4×4×16 tokens on 16 px); the
  // 2×2 merge gives z of 4 channels on 2×2; W 32 (the model section), 3 GTBs of 2 heads; a flow MLP of
  // width 16 with 2 ResBlocks on 4×4×1 patches; 2 reference images per class for the grid.
  uniflow: { encoder, uniflow: { latent_channels: 4, flow_width: 16, flow_depth: 2, ref_per_class: 2 } },
  // SVG stage 1: the encoder's 4×4×16 tokens + 4 residual channels from a 1-block ViT of width 16
  // (patch 4 on 16 px) → a 3-block ViT decoder of width 32 → 16 px; the GAN terms count from step 3.
  svg: { encoder, svg: { residual_channels: 4, residual_width: 16, residual_depth: 1, residual_heads: 2, disc: 'PatchGAN-T', gan_start: 3, ref_per_class: 2 } },
  // SVG stage 2 in pixel space (the latent is the space's business): 16 px, patch 1, the 3-block
  // SiT of width 32 with q/k-norm; SVG's shifts 0.4 (training) and 0.15 (the Euler grid).
  'svg-dit': { model: { ...base.model, preset: 'SiT-S/1' }, diffusion: { path: 'linear', objective: 'velocity', time_sampling: 'uniform' }, svg_dit: { train_shift: 0.4, sample_shift: 0.15 } },
};

/** Runs of several methods at once the registry tests cover too (their sections merged). */
export const COMPOSED = ['repa+sra+reg', 'repa+layersync', 'repa-e+sra', 'repa+redi', 'repa+ddt'] as const;

/**
 * A tiny spec of one method, or of several joined by '+' (each method's tiny sections merged, in
 * order), with `over` on top.
 */
export function tinySpec(protocol: string, over: Record<string, unknown> = {}): RunSpec {
  const methods = protocol.split('+');
  const extra = Object.assign({}, ...methods.map((m) => {
    if (!(m in TINY)) throw new Error(`test/actors/specs.ts: no tiny spec for method '${m}'`);
    return TINY[m];
  }));
  const which = methods.length === 1 ? { protocol } : { methods };
  return parseSpec({ ...base, name: `tiny-${protocol.replace(/\+/g, '-')}`, ...which, ...extra, ...over });
}
