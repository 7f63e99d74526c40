// What a protocol's step machine works with: the run's coordinator state (spec, the RNG streams
// the coordinator draws from, LR schedule) and the step's own context, which fills up as replies
// arrive (the batch, noise, the student's forward, the encoder's features, ...). The student owns
// the label-dropout stream, the Data actor the loader; everything else random is drawn here, from
// the same named child streams of the spec's seed as the reference trainer (src/run/reference.ts).
import { Rng } from '../tensor/rng.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { SiTConfig } from '../models/config.ts';
import type { RunSpec } from '../spec/schema.ts';
import type { Schedule } from '../optim/schedule.ts';
import { interpolantByName, type Interpolant } from '../diffusion/index.ts';
import { scheduleFor } from '../build/schedule.ts';
import { jointVae, methodStreams } from '../build/parts.ts';
import type { ActorSystem } from '../actors/system.ts';
import type { StepLog } from '../build/stepLog.ts';

export interface RunContext {
  spec: RunSpec;
  config: SiTConfig;
  /** time, noise and the protocol's streams (teacher-offset, cls-noise). */
  rngs: Record<string, Rng>;
  schedule: Schedule;
  stepsPerEpoch: number;
  path: Interpolant;
  /** Width of the encoder's features (methods' draws shaped like them), or null. */
  encoderDim: number | null;
}

export function runContext(spec: RunSpec, config: SiTConfig, dataCount: number, encoderDim: number | null = null): RunContext {
  const root = new Rng(spec.seed);
  const rngs: Record<string, Rng> = { time: root.child('time'), noise: root.child('noise') };
  // The joint VAE's 'posterior' stream belongs to the VAE actor, which draws from it.
  const vaeStream = jointVae(spec)?.vae.stream;
  for (const name of methodStreams(spec)) if (name !== vaeStream) rngs[name] = root.child(name);
  return {
    spec,
    config,
    rngs,
    schedule: scheduleFor(spec),
    stepsPerEpoch: Math.max(1, Math.floor(dataCount / spec.train.batch_size)),
    path: interpolantByName(spec.diffusion.path),
    encoderDim,
  };
}

export interface StepInput {
  sys: ActorSystem;
  run: RunContext;
  /** 1-based number of the step to run. */
  step: number;
}

export interface StepContext extends StepInput {
  /** The Data actor's batch: images, labels and, in a frozen latent space (spec.latent), their latents z: the model's input. */
  batch: { x: Tensor; y: Int32Array; z?: Tensor } | null;
  eps: Tensor | null;
  /** Flow times in [0, 1], or DDPM integer timesteps. */
  t: Float64Array | Int32Array | null;
  /** Replies kept by name (`fwd`, `feats`, `align`, `teacher`, `params`, ...). */
  out: Record<string, any>;
  /** Protocol-specific values drawn or computed by the coordinator (SRA's t_T, REG's ε_g, weights). */
  extra: Record<string, any>;
  /** Each trainable actor's share of Σ‖g‖². */
  sumSq: Record<string, number>;
  terms: Record<string, number>;
  loss: number;
  gradNorm: number;
  coef: number;
  lrFactor: number;
  failure: StepFailure | null;
}

export interface StepFailure {
  kind: 'actor' | 'nonfinite' | 'error';
  error: Error;
  /** The state (message) that failed. */
  where: string;
}

export type StepOutput = { ok: true; log: StepLog } | { ok: false; step: number; failure: StepFailure };

export function initialStepContext(input: StepInput): StepContext {
  return {
    ...input,
    batch: null, eps: null, t: null, out: {}, extra: {}, sumSq: {}, terms: {},
    loss: NaN, gradNorm: NaN, coef: 1, lrFactor: 1, failure: null,
  };
}
