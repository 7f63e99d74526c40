// What a run's methods add to the objects a run needs, built from the spec and the registry: the
// backbone (the plain SiT/DiT, or the one method that changes it), the frozen encoder, the trained
// VAE, the methods' heads (one module per method, official names), the EMA's tensors and decay.
// Both engines and every role build from here, so they build the same things from the same spec.
// Not here: the losses (each method's module), the order of a step (protocols/compose.ts).
import { Module } from '../nn/module.ts';
import { meta } from '../kernels/meta.ts';
import { Rng } from '../tensor/rng.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { createSiT, type SiT } from '../models/sit.ts';
import { createViT, vitPreset, type ViT } from '../models/vit.ts';
import { loadDinov2 } from '../models/dinov2.ts';
import { gridSize, type SiTConfig } from '../models/config.ts';
import { createVAE, vaeFactor, type VAE, type VAEConfig } from '../models/vae.ts';
import { inferSdVaeConfig } from '../models/sdVae.ts';
import { FrozenEncoder } from '../methods/encoder.ts';
import { activeMethods, type ActiveMethod } from '../methods/registry.ts';
import type { Backbone, BackboneHook, BuildContext, HiddenInputs, JointVae, SpecView, TrainingSet } from '../methods/method.ts';
import { hiddenAfterBlock } from '../methods/partialForward.ts';
import { interpolate, type Interpolant } from '../diffusion/index.ts';
import type { ImageDataset } from '../data/index.ts';
import type { RunSpec } from '../spec/schema.ts';
import { openTrainData } from './setup.ts';
import { latentSpaceOf } from './latentSpace.ts';

export type { Backbone };

const view = (spec: RunSpec) => spec as unknown as SpecView;

/** The run's methods with their sections. */
export const methodsOf = (spec: RunSpec): ActiveMethod[] => activeMethods(view(spec));

/** The method that changes the backbone and its hook, or null (the plain SiT/DiT). */
export function backboneHook(spec: RunSpec): { m: ActiveMethod; hook: BackboneHook<any> } | null {
  const m = methodsOf(spec).find((a) => a.def.backbone);
  return m ? { m, hook: m.def.backbone! } : null;
}

/** The method that trains a VAE with the backbone, or null. */
export function jointVae(spec: RunSpec): { m: ActiveMethod; vae: JointVae<any> } | null {
  const m = methodsOf(spec).find((a) => a.def.vae);
  return m ? { m, vae: m.def.vae! } : null;
}

/**
 * A joint VAE at learning rate 0 (REPA-E's frozen-VAE control) can never change: AdamW moves nothing,
 * so its loss, its alignment pass through the frozen backbone and its step are skipped and it only
 * encodes (posterior sample from its stream, as before). The student's steps are the same bit for bit.
 */
export const vaeFrozen = (j: NonNullable<ReturnType<typeof jointVae>>): boolean => j.vae.lr(j.m.s) === 0;

export const readsEncoder = (spec: RunSpec): boolean => methodsOf(spec).some((m) => m.def.reads?.includes('encoder'));

/** The methods' named RNG streams (drawn by the coordinator, or by the VAE: 'posterior'). */
export const methodStreams = (spec: RunSpec): string[] => [...new Set(methodsOf(spec).flatMap((m) => m.def.streams ?? []))];

/** Tokens before the image tokens in the backbone's hidden states. */
export const prefixTokens = (spec: RunSpec): number => backboneHook(spec)?.hook.prefixTokens ?? 0;

/** Every block the student's forward must tap for the run's methods. */
export function studentTaps(spec: RunSpec): number[] {
  return [...new Set(methodsOf(spec).flatMap((m) => m.def.taps?.(m.s) ?? []))].sort((a, b) => a - b);
}

/** The EMA decay of step index k (0-based) and whether a method fixes it (SRA's teacher lag). */
export function emaDecay(spec: RunSpec, k: number): number {
  const fixed = methodsOf(spec).map((m) => m.def.ema?.(m.s, view(spec)) ?? null).find((e) => e !== null);
  const { decay, warmup } = fixed ?? { decay: spec.train.ema_decay, warmup: spec.train.ema_warmup };
  return warmup ? Math.min(decay, (1 + k) / (10 + k)) : decay;
}

/** The hidden state after `block` of a model in eval mode (a teacher query, a joint VAE's alignment pass). */
export function hiddenAt(spec: RunSpec, model: Backbone, b: HiddenInputs, block: number, path: Interpolant): Tensor {
  const h = backboneHook(spec);
  if (h?.hook.hidden) return h.hook.hidden(h.m.s, model, b, block, path);
  return hiddenAfterBlock(model as SiT, interpolate(path, b.input, b.eps, b.t), b.t, b.y, block);
}

/** The frozen encoder: DINOv2-layout weights from `encoder.checkpoint` (pos_embed resampled to the token grid), or a seed-initialised ViT. */
export function buildEncoder(spec: RunSpec, data: Pick<ImageDataset, 'channels'>, config: SiTConfig): FrozenEncoder {
  const e = spec.encoder;
  if (!e) throw new Error(`spec '${spec.name}': ${spec.protocol} reads no encoder section`);
  const grid = gridSize(config);
  let vit: ViT;
  if (e.checkpoint) {
    vit = loadDinov2(e.checkpoint, { resampleTo: grid, ...(e.num_heads !== undefined && { numHeads: e.num_heads }) });
  } else {
    const patch = e.patch_size ?? vitPreset(e.preset).patchSize;
    vit = createViT(vitPreset(e.preset, {
      imgSize: grid * patch, patchSize: patch, inChannels: data.channels,
      ...(e.embed_dim !== undefined && { embedDim: e.embed_dim }),
      ...(e.depth !== undefined && { depth: e.depth }),
      ...(e.num_heads !== undefined && { numHeads: e.num_heads }),
    }), spec.seed);
  }
  return new FrozenEncoder(vit, { normalization: e.normalization, grid });
}

// No one-off fit in meta mode (`diffactor simulate`): shape-only tensors hold no data to fit on, the
// fit is no part of a training step, and the fitted buffers keep their shapes either way.
function buildContext(spec: RunSpec, config: SiTConfig, encoderDim: number | null, vaeConfig?: VAEConfig, fit = false): BuildContext {
  return { spec: view(spec), config, encoderDim, vaeConfig, rng: new Rng(spec.seed).child('method-heads'), training: fit, ...(fit && !meta.on && { trainingSet: () => trainingSet(spec, config) }) };
}

/** The spec's training set and its frozen encoder (a backbone's one-off fit: BuildContext.trainingSet). */
function trainingSet(spec: RunSpec, config: SiTConfig): TrainingSet {
  const data = openTrainData(spec);
  return { data, encoder: buildEncoder(spec, data, config) };
}

/**
 * The trained model (call twice for its EMA twin): the changing method's backbone, else SiT/DiT.
 * `o.trained`: the model the optimiser trains, the one a backbone's one-off fit on the training set
 * goes into (BuildContext.trainingSet); its copies (EMA, evaluator) receive it with the weights.
 */
export function buildBackbone(spec: RunSpec, config: SiTConfig, encoderDim: number | null, vaeConfig?: VAEConfig, o: { trained?: boolean } = {}): Backbone {
  const b = backboneHook(spec);
  return b ? b.hook.build(b.m.s, buildContext(spec, config, encoderDim, vaeConfig, o.trained ?? false), spec.seed) : createSiT(config, spec.seed);
}

/** The model a checkpoint's weights fit. */
export function backboneForWeights(spec: RunSpec, config: SiTConfig, weights: Map<string, Tensor>): Backbone {
  const b = backboneHook(spec);
  return b ? b.hook.fromWeights(b.m.s, { spec: view(spec), config }, weights) : createSiT(config, 0);
}

/** The weights a plain SiT samples with (REPA-E drops its BN) and whether they fit a plain SiT. */
export function samplingWeights(spec: RunSpec, ema: Map<string, Tensor>): Map<string, Tensor> {
  const b = backboneHook(spec);
  return b?.hook.sampleWeights ? b.hook.sampleWeights(b.m.s, ema) : ema;
}

/**
 * The model that samples with a checkpoint's weights, loaded: the method's backbone, or a plain SiT
 * of the weights it samples with (REPA-E's SiT without its latent BN: it draws in BN-normalised space).
 */
export function samplingModel(spec: RunSpec, config: SiTConfig, weights: Map<string, Tensor>): Backbone {
  const plain = samplingWeights(spec, weights);
  const model = plain.size === weights.size ? backboneForWeights(spec, config, weights) : createSiT(config, 0);
  model.loadStateDict(plain);
  return model;
}

/** The tensors the EMA averages, and those it copies (counters). */
export function emaTensors(spec: RunSpec, model: Backbone): { averaged: [string, Tensor][]; copied: [string, Tensor][] } {
  const b = backboneHook(spec)?.hook;
  return { averaged: b?.emaTensors?.(model) ?? model.namedParameters(), copied: b?.emaCopied?.(model) ?? [] };
}

/**
 * The methods' trainable heads as one module: each method's own under its official names, or,
 * when several methods have heads, under `<method>.` so that they cannot collide.
 */
export class MethodHeads extends Module {
  readonly byMethod = new Map<string, Module>();
  constructor(parts: [string, Module][]) {
    super();
    const flat = parts.length === 1;
    for (const [name, m] of parts) {
      this.byMethod.set(name, m);
      if (flat) for (const [k, c] of m.children()) this.child(k, c);
      else this.child(name, m);
    }
  }

  of(method: string): Module {
    const m = this.byMethod.get(method);
    if (!m) throw new Error(`heads: method '${method}' has none (have: ${[...this.byMethod.keys()].join(', ') || 'none'})`);
    return m;
  }
}

/** The run's heads, or null when no method has any. */
export function buildHeads(spec: RunSpec, config: SiTConfig, encoderDim: number | null): MethodHeads | null {
  const c = buildContext(spec, config, encoderDim);
  const parts = methodsOf(spec).filter((m) => m.def.heads).map((m): [string, Module] => [m.def.name, m.def.heads!(m.s, c)]);
  return parts.length ? new MethodHeads(parts) : null;
}

/** The jointly trained VAE's config for the data, or undefined when no method trains one. */
export function vaeConfigFor(spec: RunSpec, data: Pick<ImageDataset, 'channels' | 'height'>): VAEConfig | undefined {
  const j = jointVae(spec);
  return j ? j.vae.config(j.m.s, data, spec.name) : undefined;
}

export function buildVae(spec: RunSpec, config: VAEConfig): VAE {
  const j = jointVae(spec);
  if (!j) throw new Error(`spec '${spec.name}': ${spec.protocol} trains no VAE`);
  return j.vae.build(j.m.s, config, spec.seed);
}

/**
 * The jointly trained VAE of a checkpoint (its `vae.` tensors), in eval mode, or null when the run
 * trained none. The spec names its preset or file; the weights give its channels.
 */
export function vaeForCheckpoint(c: { spec: RunSpec; config: SiTConfig; vae?: Map<string, Tensor> }, file: string): VAE | null {
  const j = jointVae(c.spec);
  if (!j) return null;
  if (!c.vae?.size) throw new Error(`${file}: a ${c.spec.protocol} checkpoint without 'vae.' tensors; cannot decode its latents`);
  const shape = inferSdVaeConfig(c.vae, {}, { normNumGroups: 1 });
  const vae = createVAE(j.vae.config(j.m.s, { channels: shape.inChannels, height: c.config.inputSize * vaeFactor(shape) }, c.spec.name), 0);
  vae.loadStateDict(c.vae);
  return vae.eval();
}

/**
 * Images from a model's samples: a frozen latent space (spec.latent) or a joint VAE (with the given
 * EMA weights) decodes latents; else they are images.
 */
export function samplesToImages(spec: RunSpec, config: SiTConfig, vae: VAE | null, weights: Map<string, Tensor>, samples: Float32Array, n: number): { images: Float32Array; channels: number; side: number } {
  const space = latentSpaceOf(spec);
  if (space) return { images: space.decode(samples, n, config.inputSize), channels: space.imageChannels, side: config.inputSize * space.factor };
  const j = jointVae(spec);
  if (!j || !vae) return { images: samples, channels: config.inChannels, side: config.inputSize };
  return { images: j.vae.decode(j.m.s, vae, weights, samples, n, config.inputSize), channels: vae.config.outChannels, side: config.inputSize * vaeFactor(vae.config) };
}

export type { SiT };

/** How a run's samples are drawn when a method's backbone owns its sampling (MethodDefinition.drawLabel), else null. */
export function ownDrawLabel(spec: RunSpec): string | null {
  for (const m of methodsOf(spec)) if (m.def.drawLabel) return m.def.drawLabel(m.s, view(spec));
  return null;
}
