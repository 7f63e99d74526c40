// The run spec: one YAML file that fully determines a run (with its seed). Validated with zod so
// that a mistake names the field, what was given and what is allowed. Method-specific sections
// (repa, sra, reg, repa_e, ...) join as the protocols land.
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
  checkpoint_every: positiveInt.default(500),
  log_every: positiveInt.default(10),
});

export const SampleSpec = z.strictObject({
  sampler: z.enum(['euler', 'heun', 'sde', 'ddpm', 'ddim']).default('euler'),
  steps: positiveInt.default(50),
  cfg: z.number().min(1).default(1),
  guidance_low: z.number().min(0).max(1).default(0),
  guidance_high: z.number().min(0).max(1).default(1),
  per_class: positiveInt.default(8),
});

export const RunSpec = z.strictObject({
  name: z.string().min(1),
  seed: z.number().int().min(0).default(0),
  protocol: z.enum(['sit-baseline', 'dit-baseline']).default('sit-baseline'),
  data: DataSpec.default(DataSpec.parse({})),
  model: ModelSpec.default(ModelSpec.parse({})),
  diffusion: DiffusionSpec.default(DiffusionSpec.parse({})),
  train: TrainSpec.default(TrainSpec.parse({})),
  sample: SampleSpec.default(SampleSpec.parse({})),
});

export type RunSpec = z.infer<typeof RunSpec>;
