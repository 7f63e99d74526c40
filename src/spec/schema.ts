// The run spec: one YAML file that fully determines a run (with its seed). Validated with zod so
// that a mistake names the field, what was given and what is allowed. Method-specific sections
// (repa, sra, reg, repa_e, encoder, ... as the protocols land) are allowed only with the protocol
// that reads them and are filled with their defaults when that protocol is chosen.
import { z } from 'zod';

const positiveInt = z.number().int().positive();

export const DataSpec = z.strictObject({
  /** builtin | fashion-mnist | cifar10 | a folder (CIFAR binaries, IDX files or PNG class folders). */
  dataset: z.string().min(1).default('builtin'),
  /** Side of the square training images (Fashion-MNIST 28 is padded to 32). */
  size: positiveInt.default(32),
  /** Number of training images drawn from the built-in generator. */
  builtin_count: positiveInt.default(20000),
  hflip: z.boolean().default(false),
});

export const ModelSpec = z.strictObject({
  /** A named preset (SiT-S/2, SiT-T/2, P1, ...); explicit fields below override it. */
  preset: z.string().default('SiT-T/2'),
  family: z.enum(['SiT', 'DiT']).optional(),
  patch_size: positiveInt.optional(),
  hidden_size: positiveInt.optional(),
  depth: positiveInt.optional(),
  num_heads: positiveInt.optional(),
  mlp_ratio: z.number().positive().optional(),
  learn_sigma: z.boolean().optional(),
  class_dropout_prob: z.number().min(0).max(1).default(0.1),
});

export const DiffusionSpec = z.strictObject({
  /** Interpolant for flow models (t=0 data, t=1 noise inside diffactor). */
  path: z.enum(['linear', 'cosine']).default('linear'),
  /** velocity: SiT flow matching; ddpm: DiT ε-prediction (hybrid loss when learn_sigma). */
  objective: z.enum(['velocity', 'ddpm']).default('velocity'),
  time_sampling: z.enum(['uniform', 'logit-normal']).default('uniform'),
  logit_normal_mean: z.number().default(0),
  logit_normal_std: z.number().positive().default(1),
});

export const TrainSpec = z.strictObject({
  steps: positiveInt.default(2000),
  batch_size: positiveInt.default(64),
  lr: z.number().positive().default(1e-4),
  /** constant | cosine (with warm-up in either case). */
  schedule: z.enum(['constant', 'cosine']).default('constant'),
  warmup_steps: z.number().int().min(0).default(0),
  min_lr_ratio: z.number().min(0).max(1).default(0.1),
  weight_decay: z.number().min(0).default(0),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.999),
  grad_clip: z.number().positive().default(1.0),
  ema_decay: z.number().min(0).max(1).default(0.9999),
  /** EMA warm-up: decay at step k is min(ema_decay, (1 + k) / (10 + k)), so short runs do not keep the init. */
  ema_warmup: z.boolean().default(false),
  checkpoint_every: positiveInt.default(500),
  log_every: positiveInt.default(10),
  /** Actor runs: the Evaluator measures the EMA teacher every N steps, beside training (0: never). */
  eval_every: z.number().int().min(0).default(0),
});

export const SampleSpec = z.strictObject({
  sampler: z.enum(['euler', 'heun', 'sde', 'ddpm', 'ddim']).default('euler'),
  steps: positiveInt.default(50),
  cfg: z.number().min(1).default(1),
  guidance_low: z.number().min(0).max(1).default(0),
  guidance_high: z.number().min(0).max(1).default(1),
  per_class: positiveInt.default(8),
  /** REG only: guidance scale of the class-token stream (default: cfg; <= 0: conditional only). */
  cls_cfg: z.number().optional(),
});

/** The frozen encoder of REPA and REG (methods/encoder.ts). */
export const EncoderSpec = z.strictObject({
  /**
   * A safetensors file with DINOv2-layout ViT weights (loadDinov2). null: a ViT of `preset`
   * initialised from the run's seed and frozen, a PLACEHOLDER until a trained encoder exists.
   */
  checkpoint: z.string().min(1).nullable().default(null),
  /** ViT preset of the seed-initialised encoder (ViT-T/4, ViT-P/4, ...), with the overrides below. */
  preset: z.string().default('ViT-P/4'),
  patch_size: positiveInt.optional(),
  embed_dim: positiveInt.optional(),
  depth: positiveInt.optional(),
  num_heads: positiveInt.optional(),
  /** Input map from the data range [-1, 1]: identity, zero-one ((x+1)/2), imagenet ((x+1)/2 then ImageNet mean/std; DINOv2). */
  normalization: z.enum(['identity', 'zero-one', 'imagenet']).default('identity'),
});

/** REPA (methods-a.md §1). */
export const RepaSpec = z.strictObject({
  /** 1-based block whose output the projector reads (official 4 for B, 8 for L/XL). */
  encoder_depth: positiveInt.default(4),
  proj_coeff: z.number().min(0).default(0.5),
  projector_dim: positiveInt.default(2048),
});

/** SRA (methods-a.md §2). */
export const SraSpec = z.strictObject({
  /** L_s and L_T: 1-based blocks of the student (through the head) and of the EMA teacher. */
  student_block: positiveInt.default(4),
  teacher_block: positiveInt.default(8),
  t_max: z.number().min(0).max(1).default(0.2),
  loss: z.enum(['cos', 'sml1', 'l1', 'l2']).default('cos'),
  /** cos only: tokens = the official cosine over dim 1 (across tokens); features = per token. */
  cos_axis: z.enum(['tokens', 'features']).default('tokens'),
  sml1_beta: z.number().positive().default(0.05),
  /** Default: constant for cos, epoch-decay otherwise (official). */
  weight_schedule: z.enum(['constant', 'epoch-decay']).optional(),
  /** Default: 0.5 for cos, 0.2 otherwise (official). */
  weight: z.number().min(0).optional(),
  decay_start_epoch: z.number().min(0).default(149),
  decay_epochs: z.number().positive().default(1000),
  /** Steps counted as one epoch by the epoch-decay schedule; default: floor(dataset size / batch size). */
  steps_per_epoch: positiveInt.optional(),
}).transform((s) => ({
  ...s,
  weight_schedule: s.weight_schedule ?? (s.loss === 'cos' ? 'constant' as const : 'epoch-decay' as const),
  weight: s.weight ?? (s.loss === 'cos' ? 0.5 : 0.2),
}));

/** REG (methods-a.md §3). */
export const RegSpec = z.strictObject({
  encoder_depth: positiveInt.default(4),
  proj_coeff: z.number().min(0).default(0.5),
  projector_dim: positiveInt.default(2048),
  /** β of the class-token velocity loss. */
  cls_coeff: z.number().min(0).default(0.03),
});

/**
 * REPA-E (methods-b.md §2): a VAE trained jointly with a latent SiT. The SiT sees BN(z) of the
 * VAE's sampled latent; the VAE is updated on its regularisers plus `vae_align_coeff`·L_REPA
 * through the frozen SiT. LPIPS and the GAN term of the official VAE loss need pretrained
 * networks (VGG, a discriminator) this project cannot have: the regularisers are L1 + KL only.
 */
export const RepaESpec = z.strictObject({
  /** 1-based block whose output the projector reads (official 8 of 28 for SiT-XL). */
  encoder_depth: positiveInt.default(2),
  projector_dim: positiveInt.default(512),
  /** λ of L_REPA in the SiT's loss. */
  proj_coeff: z.number().min(0).default(0.5),
  /** λ of L_REPA in the VAE's loss (official `vae-align-proj-coeff`). */
  vae_align_coeff: z.number().min(0).default(1.5),
  /**
   * The VAE's AdamW learning rate (betas, weight decay and the schedule's factor come from train).
   * 0 freezes the VAE: REPA in a fixed latent space, the REPA-E paper's control.
   */
  vae_lr: z.number().min(0).default(1e-4),
  /** Weight of mean |x − x̂|. */
  l1_weight: z.number().min(0).default(1.0),
  /** Weight of KL(q(z|x) ‖ N(0, I)) summed over latent elements, averaged over the batch. */
  kl_weight: z.number().min(0).default(1e-6),
  /** The latent BatchNorm2d (affine false): running-stat momentum and eps. */
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

/** What the Evaluator measures (issue 5): samples of the EMA model against the test split. */
export const EvalSpec = z.strictObject({
  /** Generated images per evaluation (balanced over classes). */
  samples: positiveInt.default(256),
  /** Sampling steps and guidance of the evaluation draws (the spec's sampler; unguided FD by default). */
  steps: positiveInt.default(20),
  /**
   * Equal-cost evaluation: when set, each draw uses the most sampler steps whose model evaluations
   * per sample do not exceed it (Heun 2N − 1, the others N), instead of `steps`.
   */
  nfe: positiveInt.optional(),
  cfg: z.number().min(1).default(1),
  /** Real test images whose classifier features are the reference of FD, sFID and precision/recall. */
  reference: positiveInt.default(1000),
  /** Images for the linear probe of hidden states (train subset, test subset). */
  probe_train: positiveInt.default(1000),
  probe_test: positiveInt.default(500),
  /** Noise time at which hidden states are read for CKNNA and the probe (t = 0 is data). */
  t: z.number().min(0).max(1).default(0.5),
  /** 1-based block whose hidden state is probed (default ceil(depth / 3), the same for every method). */
  block: positiveInt.optional(),
  /** Channels of the classifier's spatial map kept for sFID. */
  sfid_channels: positiveInt.default(7),
  /** k of the precision/recall manifolds. */
  k: positiveInt.default(3),
  /** Feature classifier and representation encoder files (default: the shipped stand-ins for the dataset). */
  classifier: z.string().min(1).nullable().default(null),
  encoder: z.string().min(1).nullable().default(null),
});

const PROTOCOLS = ['sit-baseline', 'dit-baseline', 'repa', 'sra', 'reg', 'repa-e'] as const;
/** Which method sections each protocol reads. */
const SECTIONS = { repa: ['repa', 'encoder'], sra: ['sra'], reg: ['reg', 'encoder'], 'repa-e': ['repa_e', 'encoder'] } as const;
const SECTION_SCHEMAS = { repa: RepaSpec, sra: SraSpec, reg: RegSpec, repa_e: RepaESpec, encoder: EncoderSpec } as const;
type Section = keyof typeof SECTION_SCHEMAS;

export const RunSpec = z.strictObject({
  name: z.string().min(1),
  seed: z.number().int().min(0).default(0),
  protocol: z.enum(PROTOCOLS).default('sit-baseline'),
  data: DataSpec.default(DataSpec.parse({})),
  model: ModelSpec.default(ModelSpec.parse({})),
  diffusion: DiffusionSpec.default(DiffusionSpec.parse({})),
  train: TrainSpec.default(TrainSpec.parse({})),
  eval: EvalSpec.default(EvalSpec.parse({})),
  sample: SampleSpec.default(SampleSpec.parse({})),
  encoder: EncoderSpec.optional(),
  repa: RepaSpec.optional(),
  sra: SraSpec.optional(),
  reg: RegSpec.optional(),
  repa_e: RepaESpec.optional(),
}).superRefine((s, ctx) => {
  const used: readonly string[] = SECTIONS[s.protocol as keyof typeof SECTIONS] ?? [];
  for (const k of Object.keys(SECTION_SCHEMAS) as Section[]) {
    if (s[k] !== undefined && !used.includes(k)) {
      ctx.addIssue({ code: 'custom', path: [k], message: `section '${k}' is not read by protocol ${s.protocol}${used.length ? ` (it reads: ${used.join(', ')})` : ''}` });
    }
  }
}).transform((s) => {
  const used: readonly Section[] = SECTIONS[s.protocol as keyof typeof SECTIONS] ?? [];
  const out = { ...s };
  for (const k of used) if (out[k] === undefined) (out as Record<string, unknown>)[k] = SECTION_SCHEMAS[k].parse({});
  return out;
});

export type RunSpec = z.infer<typeof RunSpec>;
