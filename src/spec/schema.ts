// The run spec: one YAML file that fully determines a run (with its seed). Validated with zod so
// that a mistake names the field, what was given and what is allowed. `methods:` lists registered
// methods (src/methods/registry.ts); each method's section (its schema lives in its module) is
// allowed only when a listed method reads it and is filled with its defaults when one does.
import { z } from 'zod';
import { DEFAULT_METHOD, METHODS, incompatibility, methodByName, methodNames, sectionsRead } from '../methods/registry.ts';

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
  /** Checkpoints kept as OUT/checkpoints/step-<N>.safetensors: the newest K (run/retention.ts, docs/training.md). */
  keep_last: positiveInt.default(3),
  /**
   * OUT/checkpoints/best.safetensors by: an evaluation metric (fd, sfid: lower is better; is,
   * precision, recall, cknna, probe: higher), loss (mean training loss since the previous
   * checkpoint), none, or auto (fd when the run evaluates, else loss).
   */
  keep_best: z.enum(['auto', 'none', 'loss', 'fd', 'sfid', 'is', 'precision', 'recall', 'class_acc', 'class_conf', 'cknna', 'probe']).default('auto'),
  /**
   * Mixed precision of the training step: bf16 makes every Linear product (forward, dx, dW) and
   * the products of the blocks' qkv attention (QK^T, PV and their gradients) of the trained roles
   * read bf16 operands with fp32 sums (native gemmBf16: VDPBF16PS where the CPU has AVX512_BF16);
   * weights, gradients, AdamW, EMA, norms and softmax statistics stay fp32. Sampling and
   * evaluation run in fp32.
   */
  precision: z.enum(['fp32', 'bf16']).default('fp32'),
});

export const SampleSpec = z.strictObject({
  sampler: z.enum(['euler', 'heun', 'sde', 'ddpm', 'ddim']).default('euler'),
  steps: positiveInt.default(50),
  cfg: z.number().min(1).default(1),
  guidance_low: z.number().min(0).max(1).default(0),
  guidance_high: z.number().min(0).max(1).default(1),
  per_class: positiveInt.default(8),
  /** Guidance scale of a second sampling stream (REG's class token) (default: cfg; <= 0: conditional only). */
  cls_cfg: z.number().optional(),
});

/** The frozen encoder, for every method that reads it (methods/encoder.ts). */
export const EncoderSpec = z.strictObject({
  /**
   * A safetensors file with DINOv2-layout ViT weights (loadDinov2). null: a ViT of `preset`
   * initialised from the run's seed and frozen: no learned representation (tests, benchmarks);
   * the shipped specs name the trained stand-in (docs/models/encoder.md).
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

/**
 * A frozen latent space the model works in instead of pixels (build/latentSpace.ts): the training
 * images are encoded once per batch by a frozen autoencoder, samples are decoded by it. Absent:
 * the model works on the images.
 */
export const LatentSpec = z.strictObject({
  /** A diffusers-layout KL-VAE file (`npx diffactor standin vae`; specs/standins/vae-*.safetensors). */
  autoencoder: z.string().min(1),
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

const METHOD_NAMES = methodNames() as [string, ...string[]];
/** The sections methods own, from the registry (key → schema), and the shared ones they may read. */
const METHOD_SECTIONS: Record<string, z.ZodType> = Object.fromEntries(METHODS.filter((m) => m.section).map((m) => [m.section!.key, m.section!.schema.optional()]));
const SHARED_SECTIONS = { encoder: EncoderSpec } as const;
const SECTION_SCHEMAS: Record<string, z.ZodType> = { ...Object.fromEntries(METHODS.filter((m) => m.section).map((m) => [m.section!.key, m.section!.schema])), ...SHARED_SECTIONS };

export const RunSpec = z.strictObject({
  name: z.string().min(1),
  seed: z.number().int().min(0).default(0),
  /**
   * The methods this run trains with, from the registry (src/methods/registry.ts); their loss
   * terms add and their routes merge. Default: the SiT baseline.
   */
  methods: z.array(z.string().min(1)).min(1).optional(),
  /** One method, the older way of writing `methods: [name]`; a stored spec also records the joined names here. */
  protocol: z.string().min(1).optional(),
  data: DataSpec.default(DataSpec.parse({})),
  model: ModelSpec.default(ModelSpec.parse({})),
  diffusion: DiffusionSpec.default(DiffusionSpec.parse({})),
  train: TrainSpec.default(TrainSpec.parse({})),
  eval: EvalSpec.default(EvalSpec.parse({})),
  sample: SampleSpec.default(SampleSpec.parse({})),
  encoder: EncoderSpec.optional(),
  latent: LatentSpec.optional(),
  ...METHOD_SECTIONS,
}).superRefine((s, ctx) => {
  const methods = s.methods ?? (s.protocol !== undefined ? s.protocol.split('+') : [DEFAULT_METHOD]);
  const unknown = methods.filter((m) => !METHOD_NAMES.includes(m));
  if (unknown.length) {
    ctx.addIssue({ code: 'custom', path: [s.methods ? 'methods' : 'protocol'], message: `unknown method ${unknown.map((m) => `'${m}'`).join(', ')} (registered: ${METHOD_NAMES.join(', ')})` });
    return;
  }
  if (s.methods && s.protocol !== undefined && s.protocol !== s.methods.join('+')) {
    ctx.addIssue({ code: 'custom', path: ['protocol'], message: `protocol '${s.protocol}' disagrees with methods [${s.methods.join(', ')}]; give one of them` });
  }
  const defs = methods.map(methodByName);
  const why = incompatibility(defs);
  if (why) ctx.addIssue({ code: 'custom', path: ['methods'], message: why });
  const used = sectionsRead(defs);
  for (const k of Object.keys(SECTION_SCHEMAS)) {
    if ((s as Record<string, unknown>)[k] !== undefined && !used.includes(k)) {
      ctx.addIssue({ code: 'custom', path: [k], message: `section '${k}' is not read by ${methods.join(' + ')}${used.length ? ` (it reads: ${used.join(', ')})` : ''}` });
    }
  }
}).transform((s) => {
  const methods = s.methods ?? (s.protocol !== undefined ? s.protocol.split('+') : [DEFAULT_METHOD]);
  const out: Record<string, unknown> = { ...s, methods, protocol: methods.join('+') };
  for (const k of sectionsRead(methods.map(methodByName))) if (out[k] === undefined) out[k] = SECTION_SCHEMAS[k].parse({});
  return out as typeof s & { methods: string[]; protocol: string } & MethodSections;
});

/** Method sections as the code reads them (each method module types its own). */
interface MethodSections { [key: string]: unknown }

export type RunSpec = z.infer<typeof RunSpec>;
