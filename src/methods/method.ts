// What a method is: one definition object that both engines interpret (DESIGN.md, "Methods are
// modules"). A method module (src/methods/<name>/) exports one MethodDefinition: its spec section
// (schema with cited defaults), the actors it needs, its heads and which actor owns them, its loss
// terms as the paper writes them, the per-step values it draws, and hooks where it changes the
// backbone, the input space or sampling. The registry (registry.ts) lists them; the spec schema,
// the step machine (protocols/compose.ts), the reference engine (run/reference.ts), the roles and
// the study ask the registry and never name a method.
//
// The loss of a step is always L = Σ own terms (computed by the Student from its own forward) +
// Σ align terms (computed by the Projector from a tapped hidden state and a target), each with its
// weight; the reference engine evaluates that sum on one tape (the formula), the step machine
// splits it across actors and routes the gradients. test/actors/equivalence.test.ts checks, for every
// registered method, that both give the same gradients.
// Not here: any particular method; the order of a step (protocols/compose.ts).
import type { z } from 'zod';
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import type { Module } from '../nn/module.ts';
import type { SiT } from '../models/sit.ts';
import type { SiTConfig } from '../models/config.ts';
import type { VAE, VAEConfig } from '../models/vae.ts';
import type { Interpolant } from '../diffusion/interpolant.ts';
import type { AdamW } from '../optim/adamw.ts';
import type { EncoderFeatures, FrozenEncoder } from './encoder.ts';
import type { ImageDataset } from '../data/index.ts';

/** The parsed run spec as methods see it (sections by key; see spec/schema.ts). */
export interface SpecView {
  name: string;
  seed: number;
  methods: string[];
  model: { family?: 'SiT' | 'DiT'; learn_sigma?: boolean };
  diffusion: { objective: 'velocity' | 'ddpm'; path: 'linear' | 'cosine' };
  sample: { sampler: string };
  train: { steps: number; batch_size: number; ema_decay: number; ema_warmup: boolean; lr: number; grad_clip: number; beta1: number; beta2: number; weight_decay: number };
  [section: string]: unknown;
}

/** What a hook knows about the run being built. */
export interface BuildContext {
  spec: SpecView;
  config: SiTConfig;
  /** Width of the frozen encoder's features, or null when no method reads the encoder. */
  encoderDim: number | null;
  vaeConfig?: VAEConfig;
  /** The seed's stream for this method's heads (Rng(seed).child('method-heads')). */
  rng: Rng;
  /**
   * The run's training set and frozen encoder, opened when called: for a backbone that fits
   * statistics on them once when it is built (ReDi's feature PCA, kept in its buffers and so in
   * every checkpoint). Given only to the model the optimiser trains; its copies (the EMA, the
   * evaluator's) get the result from it (emaCopied, the weights), and models rebuilt from weights
   * read it there.
   */
  trainingSet?: () => TrainingSet;
  /**
   * True for the model the optimiser trains, also under meta execution (`diffactor simulate`, where
   * there is no trainingSet): where a part only training uses is attached (a loss network, a
   * distillation teacher), so a simulated step counts its work.
   */
  training?: boolean;
}

/** What a fit on the training set reads (BuildContext.trainingSet). */
export interface TrainingSet { data: ImageDataset; encoder: FrozenEncoder }

/**
 * A backbone whose sampled state is more than the image or whose sampling velocity is not its
 * forward (ReDi: image + feature channels, representation guidance). The samplers draw noise of
 * config.inChannels channels, integrate samplingVelocity (default forward(x, t, y).out) and keep
 * the first imageChannels channels as the image (build/draw.ts).
 */
export interface SampledState {
  readonly imageChannels: number;
  samplingVelocity(x: Tensor, t: Tensor, y: Tensor): Tensor;
  /** CFG guides only the first guidedChannels channels, the rest come from the conditional half (ReDi's --cfg-vae); undefined: all. */
  readonly guidedChannels?: number;
}

/** Whether a model is a SampledState (by shape, never by name). */
export function isSampledState(m: unknown): m is SampledState {
  return typeof m === 'object' && m !== null && typeof (m as SampledState).imageChannels === 'number' && typeof (m as SampledState).samplingVelocity === 'function';
}

/** The sample settings a backbone's own sampler reads (the spec's sample section). */
export interface OwnSampleSettings {
  sampler: string; steps: number; cfg: number; guidance_low: number; guidance_high: number;
  /**
   * The labels drawn before this batch in the same draw (drawSamples' earlier batches, the sample
   * pool's earlier chunks): a reconstruction grid's sample is the n-th reference of its class
   * counting from the start of the whole draw, not of the batch.
   */
  labelsBefore?: readonly number[];
}

/** How many samples of each class a draw made before this batch (OwnSampleSettings.labelsBefore). */
export function classCounts(labelsBefore: readonly number[] = []): Map<number, number> {
  const m = new Map<number, number>();
  for (const c of labelsBefore) m.set(c, (m.get(c) ?? 0) + 1);
  return m;
}

/**
 * A backbone that draws with its own sampler for some of the spec's samplers (DDT: its Euler
 * sampler with the always-doubled CFG batch and encoder sharing). build/draw.ts hands it the
 * noise (B, C, H, W) and labels it drew and takes the images back; other samplers go the generic way.
 */
export interface OwnSampler {
  ownsSampler(sampler: string): boolean;
  drawOwn(noise: Tensor, y: Tensor, s: OwnSampleSettings, onStep?: (i: number, n: number) => void): Tensor;
}

/** Whether a model is an OwnSampler (by shape, never by name). */
export function isOwnSampler(m: unknown): m is OwnSampler {
  return typeof m === 'object' && m !== null && typeof (m as OwnSampler).ownsSampler === 'function' && typeof (m as OwnSampler).drawOwn === 'function';
}

/** A trained backbone: the plain SiT, or a method's variant (REG's class token, REPA-E's latent BN). */
export type Backbone = SiT | (Module & { readonly config: SiTConfig; forward(...a: any[]): any });

/** What the Student's forward produced on a noised batch. */
export interface StudentForward {
  /** (B, C, H, W) the model's prediction and the flow target it is regressed to. */
  out: Tensor;
  target: Tensor;
  /** Block (1-based) → hidden state after it, (B, P + T, D) with P prefix tokens (backbone.prefixTokens). */
  hidden: Map<number, Tensor>;
  /** Labels after class dropout. */
  labels: Int32Array;
  /** Extra weighted terms of the backbone's own objective (REG's class-token velocity loss). */
  terms: Record<string, WeightedTerm>;
}

export interface WeightedTerm { value: Tensor; weight: number }

/** The values of one step that the coordinator draws or receives; the same in both engines. */
export interface StepValues {
  /** 1-based step number. */
  step: number;
  /** (B, C, H, W) clean images and (B) labels from the loader. */
  x: Tensor;
  y: Int32Array;
  /** What the student is noised from: x, or a method's latent (REPA-E's z). */
  input: Tensor;
  eps: Tensor;
  t: Float64Array;
  /** The frozen encoder's features of x (when a method reads them). */
  feats: EncoderFeatures | null;
  /** Each method's draws for this step, by method name (draw()). */
  draws: Record<string, Record<string, any>>;
  stepsPerEpoch: number;
  path: Interpolant;
}

/** What a hidden-state query reads: the input, noise and times, labels as given, features and draws. */
export interface HiddenInputs {
  input: Tensor;
  eps: Tensor;
  t: Float64Array;
  y: Int32Array;
  feats: EncoderFeatures | null;
  draws: Record<string, Record<string, any>>;
}

/** What the Student's forward needs beyond (input, ε, t, y): the inputs a backbone hook takes. */
export interface ForwardInputs {
  input: Tensor;
  eps: Tensor;
  t: Float64Array;
  y: Int32Array;
  taps: number[];
  /** The encoder's features and the methods' draws, for backbones that take them (REG). */
  feats: EncoderFeatures | null;
  draws: Record<string, Record<string, any>>;
}

/**
 * A method that changes the trained network (REG's class-token SiT, REPA-E's SiT with its latent
 * BatchNorm). At most one method of a run may provide one.
 */
export interface BackboneHook<S> {
  build(s: S, c: BuildContext, seed: number): Backbone;
  /** The model a checkpoint's weights fit (REG reads its class width from them). */
  fromWeights(s: S, c: Omit<BuildContext, 'rng' | 'encoderDim'>, weights: Map<string, Tensor>): Backbone;
  /** The student's forward in training: the noised input, the model, the flow target. */
  forward(s: S, model: Backbone, b: ForwardInputs, path: Interpolant, dropout: Rng): StudentForward;
  /** Whether forward reads the encoder's features (then they are fetched before it, not beside it). */
  readsFeatures?: boolean;
  /** Tokens before the image tokens in each hidden state (REG: its class token). */
  prefixTokens?: number;
  /** The tensors the EMA averages (default: the parameters) and counters it copies. */
  emaTensors?(model: Backbone): [string, Tensor][];
  emaCopied?(model: Backbone): [string, Tensor][];
  /**
   * The hidden state after `block` of the model (in eval mode: no label dropout) on the noised
   * input at times t — the EMA teacher's answer to a query (SRA) and a joint VAE's alignment pass
   * (REPA-E's SiT_align_only). Default: the plain SiT's blocks 1..block on x_t.
   */
  hidden?(s: S, model: Backbone, b: HiddenInputs, block: number, path: Interpolant): Tensor;
  /** Sampling: a plain SiT of the EMA weights draws; `decode` maps its samples to images. */
  sampleWeights?(s: S, ema: Map<string, Tensor>): Map<string, Tensor>;
}

/**
 * An alignment term computed by the Projector actor: weight · loss(heads, hidden after block
 * `tap`, target). The hidden state is a leaf there; its gradient goes back to the Student.
 */
export interface AlignTerm<S> {
  /** Key in metrics.jsonl. */
  name: string;
  tap(s: S): number;
  weight(s: S, v: StepValues): number;
  /** The target comes from the encoder's features, the teacher's hidden state, or both. */
  loss(s: S, heads: Module, hidden: Tensor, target: AlignTarget): Tensor;
}

export interface AlignTarget {
  feats: EncoderFeatures | null;
  teacher: Tensor | null;
  /** Prefix tokens of the hidden state (see BackboneHook.prefixTokens). */
  prefixTokens: number;
}

/** The EMA teacher's hidden state a method aligns to (SRA): block and times, after the student's label dropout. */
export interface TeacherQuery { block: number; t: Float64Array }

/** What a joint VAE's loss parts are built for: the run's dataset (after --data), its image channels, the seed, the train section. */
export interface VaeLossContext {
  dataset: string;
  channels: number;
  seed: number;
  train: SpecView['train'];
}

/**
 * Modules a joint VAE's loss uses besides the VAE, built once per run by whichever engine owns the
 * VAE (the reference Trainer, the VAE actor): frozen ones the method keeps to itself (REPA-E's
 * perceptual net), and at most one trained adversary with its own optimiser (REPA-E's PatchGAN
 * discriminator), whose weights and optimiser state the checkpoint carries under `vae_disc.` /
 * `vae_disc_opt.` (state.discOptStep).
 */
export interface VaeLossParts {
  disc?: { module: Module; opt: AdamW } | null;
}

/**
 * A VAE trained with the backbone (REPA-E): the VAE actor runs it; the student is noised from its
 * latent, detached. Its loss is its regulariser plus `alignCoeff` · the align term `alignTerm`
 * evaluated through the frozen, eval-mode backbone (backbone.alignForward). Per step both engines
 * call, in this order: regularizer (where the posterior is computed, on the VAE's tape), one
 * backward, clip and the VAE's AdamW step, then afterUpdate (an adversary's own step on x and the
 * reconstruction, detached: nothing of it reaches the VAE).
 */
export interface JointVae<S, P extends VaeLossParts = VaeLossParts> {
  /** The RNG stream its posterior samples from (drawn by the VAE actor). */
  stream: string;
  config(s: S, data: { channels: number; height: number }, specName: string): VAEConfig;
  build(s: S, config: VAEConfig, seed: number): VAE;
  /** The VAE's own AdamW learning rate. */
  lr(s: S): number;
  /** The modules its loss needs besides the VAE (default: none). */
  lossParts?(s: S, c: VaeLossContext): P;
  /**
   * Its regularisers on (x, reconstruction, posterior) at 1-based step `step`: a loss on the VAE's
   * tape and logged parts. `parts` is what lossParts built ({} without it).
   */
  regularizer(s: S, x: Tensor, recon: Tensor, post: { mean: Tensor; logvar: Tensor }, parts: P, step: number): { loss: Tensor; terms: Record<string, number> };
  /** After the VAE's AdamW step: an adversary's update on x and recon (detached); logged numbers. */
  afterUpdate?(s: S, parts: P, x: Tensor, recon: Tensor, step: number, lrFactor: number): Record<string, number>;
  /** Weight and block of the alignment pass that reaches the VAE. */
  alignCoeff(s: S): number;
  alignTerm: AlignTerm<S>;
  /** Latent stats for the backbone's BN from the VAE (init) and images from samples. */
  decode(s: S, vae: VAE, emaBuffers: Map<string, Tensor>, samples: Float32Array, n: number, side: number): Float32Array;
}

/**
 * A frozen latent space (a spec's `latent.autoencoder`, build/latentSpace.ts): what the model is
 * trained in instead of pixels. Images (B, C, H, W) in [-1, 1] → normalised latents
 * (B, channels, H/factor, W/factor) and back. Two kinds exist: a diffusers-layout VAE file
 * (build/latentSpace.ts) and a run checkpoint whose method provides `autoencoder` (RAE stage 1).
 */
export interface LatentSpace {
  /** The autoencoder file (what error messages name). */
  readonly file: string;
  /** Latent channels, image channels it encodes, image channels it decodes, image side / latent side. */
  readonly channels: number;
  readonly inputChannels: number;
  readonly imageChannels: number;
  readonly factor: number;
  /** The latent grid's side for images of side `imageSide` (errors name `where`). */
  side(imageSide: number, where?: string): number;
  /** Images → normalised latents, without a tape, in a pooled buffer (call inside the caller's tidy). */
  encode(x: Tensor): Tensor;
  /** n normalised latents (n, channels, side, side) → images (n, imageChannels, side·factor, side·factor). */
  decode(latents: Float32Array, n: number, side: number): Float32Array;
}

/** What a method's autoencoder hook reads of a run checkpoint a spec names as its latent space. */
export interface AutoencoderContext {
  /** The checkpoint file. */
  file: string;
  /** The checkpoint's spec and model config. */
  spec: SpecView;
  config: SiTConfig;
  /** The checkpoint's EMA weights in the model they fit, loaded, in eval mode, frozen. */
  model: Backbone;
  /** The checkpoint spec's training set and frozen encoder, opened when called. */
  trainingSet(): TrainingSet;
}

export interface MethodDefinition<S = any> {
  /** The name a spec's `methods:` lists. */
  name: string;
  /** Label in tables and plots. */
  title: string;
  /** The paper and the authors' code (what a user can open). */
  cite: string;
  /** Its spec section: key and schema (defaults cite the paper or the official code). */
  section?: { key: string; schema: z.ZodType<S, any> };
  /** Shared spec sections it reads (e.g. 'encoder'). */
  reads?: readonly string[];
  /** What it changes about training: two methods that change the same thing cannot combine. */
  changes?: readonly ('input' | 'target' | 'backbone' | 'objective')[];
  /** The objective and model family it requires (DiT baseline: ddpm, DiT). */
  objective?: 'velocity' | 'ddpm';
  family?: 'SiT' | 'DiT';
  /** Samplers it can draw with (REG: its SDE sampler only). */
  samplers?: readonly string[];
  /**
   * How its samples are drawn when its backbone ignores the spec's sampler and steps (DiGIT: one GPT
   * call per code): what tables and `eval` print instead of "euler 40 (40 NFE)".
   */
  drawLabel?(s: S, spec: SpecView): string;
  /** Named RNG streams of the seed the coordinator draws from for it. */
  streams?: readonly string[];
  /** 1-based block indices it uses, by the spec field that names them (setup checks). */
  blocks?(s: S): Record<string, number>;
  /** Extra checks of its section against the rest of the spec (messages name the field). */
  check?(s: S, spec: SpecView): void;
  backbone?: BackboneHook<S>;
  /** Trainable heads (one module, official state_dict names), owned by the Projector actor. */
  heads?(s: S, c: BuildContext): Module;
  /** Blocks of the student's forward it reads (student terms and align terms). */
  taps?(s: S): number[];
  /** Coordinator draws before the forward (SRA's teacher times and weight, REG's ε_g). */
  draw?(s: S, v: Omit<StepValues, 'draws' | 'feats'>, rngs: Record<string, Rng>, c: { encoderDim: number | null }): Record<string, any>;
  /**
   * The weight of the velocity loss `diff` (default 1). A method whose objective is another student
   * term keeps the velocity loss at a weight of its own (SoftREPA's dweight; 0 logs it untrained).
   * Several methods' weights multiply.
   */
  diffWeight?(s: S): number;
  /** Losses the Student computes from its own forward (LayerSync), weighted. */
  studentTerms?(s: S, f: StudentForward, v: { prefixTokens: number }): Record<string, WeightedTerm>;
  alignTerms?: readonly AlignTerm<S>[];
  /** The EMA teacher's hidden state this method's align terms read (SRA). */
  teacher?(s: S, v: StepValues): TeacherQuery;
  vae?: JointVae<S, any>;
  /** The EMA teacher's decay when the method fixes it (SRA's scaled lag); null: the spec's train section. */
  ema?(s: S, spec: SpecView): { decay: number; warmup: boolean } | null;
  /** Files its section names, by spec field (a run's inputs: study/runInputs.ts). */
  files?(s: S): Record<string, string | null | undefined>;
  /** Extra numbers for metrics.jsonl from this step's draws (SRA's weight). */
  logged?(s: S, v: StepValues): Record<string, number>;
  /**
   * The frozen latent space a checkpoint of this method's run is, when another spec names the
   * checkpoint as its `latent.autoencoder` (RAE stage 1: encoder tokens ↔ the trained decoder).
   * `s` is the checkpoint spec's section.
   */
  autoencoder?(s: S, c: AutoencoderContext): LatentSpace;
}
