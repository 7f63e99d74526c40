// Checkpoints as one safetensors file. The trained model's weights carry exactly the official
// state_dict names with no prefix, so a PyTorch user drops the prefixed keys and loads the rest
// with strict=True. Everything else sits under a prefix: `ema.` (the EMA model's state_dict),
// `proj.` (a method's trained heads under their official names: REPA/REG `projectors.0.*`, SRA
// `ap_head.*`; strip the prefix and merge to get the official model's state_dict), `opt.` (AdamW
// moments and per-parameter steps; the heads' entries are `opt.proj.*`), `vae.` / `vae_opt.` (a
// jointly trained VAE, REPA-E's, and its AdamW) and `vae_disc.` / `vae_disc_opt.` (the
// discriminator of that VAE's loss and its AdamW, taming's `main.*` names). Exact integers that
// float32 tensors cannot hold (RNG counters, loader position, step) live in `__metadata__` as
// JSON, next to the model config and the run spec. Written atomically (temp file + rename): a crash never loses the previous one.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { RngState } from '../tensor/rng.ts';
import type { LoaderState } from '../data/loader.ts';
import { parseSiTConfig, sitConfigToJSON, type SiTConfig } from '../models/config.ts';
import { applyOverrides, parseSpec } from '../spec/load.ts';
import type { RunSpec } from '../spec/schema.ts';

export const CHECKPOINT_FORMAT = 'diffactor-checkpoint/1';
/**
 * `diffactor export`: one set of model weights (the EMA's or the raw trained ones) under the
 * official names with no prefix, a joint VAE's under `vae.`, the config and spec; no optimiser
 * state, heads or RNG state, so it samples, evaluates and predicts but does not resume.
 */
export const WEIGHTS_FORMAT = 'diffactor-weights/1';

export interface TrainState {
  step: number;
  rng: Record<string, RngState>;
  loader: LoaderState;
  /** AdamW's global step count. */
  optStep: number;
  /** Wall-clock seconds spent training so far (for metrics across resumes). */
  wallSeconds: number;
  /** REPA-E: the VAE AdamW's global step count. */
  vaeOptStep?: number;
  /** REPA-E: the discriminator AdamW's global step count (when its loss has one). */
  discOptStep?: number;
}

export interface Checkpoint {
  config: SiTConfig;
  spec: RunSpec;
  state: TrainState;
  model: Map<string, Tensor>;
  ema: Map<string, Tensor>;
  /** The method's heads (empty for the baselines). */
  proj: Map<string, Tensor>;
  opt: Map<string, Tensor>;
  /** REPA-E's VAE weights and its AdamW state (absent or empty otherwise). */
  vae?: Map<string, Tensor>;
  vaeOpt?: Map<string, Tensor>;
  /** The discriminator of the VAE's loss (its weights and BatchNorm buffers) and its AdamW state (absent or empty otherwise). */
  disc?: Map<string, Tensor>;
  discOpt?: Map<string, Tensor>;
  /** A weights-only file (WEIGHTS_FORMAT): which weights it holds; `model` and `ema` are then the same map. */
  exported?: 'ema' | 'raw';
}

/**
 * A checkpoint's discriminator state fits the run: present (weights and optimiser step) exactly
 * when the run's VAE loss trains one. Both engines check before loading it.
 */
export function checkDiscState(c: { disc?: Map<string, Tensor>; state: { discOptStep?: number } }, trainsDisc: boolean, protocol: string): void {
  if (trainsDisc && (!c.disc?.size || c.state.discOptStep === undefined)) {
    throw new Error(`checkpoint: ${protocol} trains a discriminator with its VAE and needs 'vae_disc.' tensors and its optimiser's step (a checkpoint written without one continues only with disc_weight 0)`);
  }
  if (!trainsDisc && c.disc?.size) throw new Error(`checkpoint: ${c.disc.size} 'vae_disc.' tensors but ${protocol} trains no discriminator`);
}

/**
 * Wall time is not part of what a run computes, so it stays out of the checkpoint (two identical
 * runs write identical files): it goes to `timing.json` beside it, one entry per checkpointed step,
 * so a crash between the two writes never pairs a checkpoint with another step's time.
 */
export const timingFile = (checkpoint: string) => path.join(path.dirname(checkpoint), 'timing.json');

function readTiming(file: string): Record<string, number> {
  try {
    const t = JSON.parse(readFileSync(timingFile(file), 'utf8')) as Record<string, number>;
    return t && typeof t === 'object' ? t : {};
  } catch {
    return {}; // none yet, or unreadable: the time is a statistic, never a reason to refuse a checkpoint
  }
}

export function saveCheckpoint(file: string, c: Checkpoint): void {
  const tensors = new Map<string, Tensor>(c.model);
  for (const [k, t] of c.ema) tensors.set(`ema.${k}`, t);
  for (const [k, t] of c.proj) tensors.set(`proj.${k}`, t);
  for (const [k, t] of c.opt) tensors.set(`opt.${k}`, t);
  for (const [k, t] of c.vae ?? []) tensors.set(`vae.${k}`, t);
  for (const [k, t] of c.vaeOpt ?? []) tensors.set(`vae_opt.${k}`, t);
  for (const [k, t] of c.disc ?? []) tensors.set(`vae_disc.${k}`, t);
  for (const [k, t] of c.discOpt ?? []) tensors.set(`vae_disc_opt.${k}`, t);
  writeSafetensors(file, tensors, {
    format: CHECKPOINT_FORMAT,
    config: sitConfigToJSON(c.config),
    spec: JSON.stringify(c.spec),
    train_state: JSON.stringify({ ...c.state, wallSeconds: undefined }),
  });
  writeFileAtomic(timingFile(file), `${JSON.stringify({ ...readTiming(file), [c.state.step]: c.state.wallSeconds })}\n`);
}

/**
 * A checkpoint read for drawing or measuring with `path=value` overrides of its spec (a method's
 * sampling option such as --set redi.rg_scale=1.5), validated as the spec file's fields are.
 */
export function loadCheckpointWith(file: string, sets: readonly string[] = []): Checkpoint {
  const c = loadCheckpoint(file);
  return sets.length ? { ...c, spec: parseSpec(applyOverrides(c.spec, sets, file), `${file} with --set ${sets.join(' ')}`) } : c;
}

export function loadCheckpoint(file: string): Checkpoint {
  const { tensors, metadata } = readSafetensors(file);
  const need = (k: string): string => {
    const v = metadata[k];
    if (v === undefined) throw new Error(`${file}: not a diffactor checkpoint (no '${k}' in __metadata__)`);
    return v;
  };
  if (need('format') === WEIGHTS_FORMAT) return loadWeights(file, tensors, metadata);
  if (need('format') !== CHECKPOINT_FORMAT) throw new Error(`${file}: checkpoint format '${metadata.format}', expected '${CHECKPOINT_FORMAT}' or '${WEIGHTS_FORMAT}'`);
  const model = new Map<string, Tensor>(), ema = new Map<string, Tensor>(), opt = new Map<string, Tensor>();
  const proj = new Map<string, Tensor>(), vae = new Map<string, Tensor>(), vaeOpt = new Map<string, Tensor>();
  const disc = new Map<string, Tensor>(), discOpt = new Map<string, Tensor>();
  for (const [k, t] of tensors) {
    if (k.startsWith('ema.')) ema.set(k.slice(4), t);
    else if (k.startsWith('vae_disc.')) disc.set(k.slice(9), t);
    else if (k.startsWith('vae_disc_opt.')) discOpt.set(k.slice(13), t);
    else if (k.startsWith('vae.')) vae.set(k.slice(4), t);
    else if (k.startsWith('vae_opt.')) vaeOpt.set(k.slice(8), t);
    else if (k.startsWith('proj.')) proj.set(k.slice(5), t);
    else if (k.startsWith('opt.')) opt.set(k.slice(4), t);
    else model.set(k, t);
  }
  let state: TrainState;
  try {
    state = JSON.parse(need('train_state')) as TrainState;
  } catch (e) {
    throw new Error(`${file}: __metadata__.train_state is not valid JSON: ${(e as Error).message}`);
  }
  // Older checkpoints kept the time inside; newer ones in timing.json.
  state.wallSeconds = readTiming(file)[state.step] ?? state.wallSeconds ?? 0;
  return {
    config: parseSiTConfig(need('config')),
    spec: parseSpec(JSON.parse(need('spec')), `${file} (__metadata__.spec)`),
    state,
    model,
    ema,
    proj,
    opt,
    vae,
    vaeOpt,
    disc,
    discOpt,
  };
}

/** A training checkpoint's EMA (default) or raw weights, and its joint VAE, as a WEIGHTS_FORMAT file. */
export function exportWeights(c: Checkpoint, which: 'ema' | 'raw', file: string, source: string): Map<string, Tensor> {
  if (c.exported && c.exported !== which) throw new Error(`${source} holds only the ${c.exported === 'ema' ? 'EMA' : 'raw'} weights; export the training checkpoint for the ${which === 'ema' ? 'EMA' : 'raw'} ones`);
  const tensors = new Map<string, Tensor>(which === 'ema' ? c.ema : c.model);
  if (!tensors.size) throw new Error(`${source}: no ${which === 'ema' ? 'EMA' : 'raw'} weights in it`);
  for (const [k, t] of c.vae ?? []) tensors.set(`vae.${k}`, t);
  writeSafetensors(file, tensors, {
    format: WEIGHTS_FORMAT,
    weights: which,
    config: sitConfigToJSON(c.config),
    spec: JSON.stringify(c.spec),
    step: String(c.state.step),
    source: path.basename(source),
  });
  return tensors;
}

function loadWeights(file: string, tensors: Map<string, Tensor>, metadata: Record<string, string>): Checkpoint {
  const which = metadata.weights;
  if (which !== 'ema' && which !== 'raw') throw new Error(`${file}: __metadata__.weights must be 'ema' or 'raw', got '${which}'`);
  const weights = new Map<string, Tensor>(), vae = new Map<string, Tensor>();
  for (const [k, t] of tensors) (k.startsWith('vae.') ? vae.set(k.slice(4), t) : weights.set(k, t));
  if (!metadata.config || !metadata.spec) throw new Error(`${file}: not a diffactor weights file (no config or spec in __metadata__)`);
  return {
    config: parseSiTConfig(metadata.config),
    spec: parseSpec(JSON.parse(metadata.spec), `${file} (__metadata__.spec)`),
    // Nothing to resume from: no RNG streams, loader position or optimiser (openRun refuses it).
    state: { step: Number(metadata.step ?? 0), rng: {}, loader: undefined as unknown as LoaderState, optStep: 0, wallSeconds: 0 },
    model: weights, ema: weights, proj: new Map(), opt: new Map(), vae,
    exported: which,
  };
}

/**
 * The weights a command uses: `want` (from its flag, undefined when the flag was not given) or
 * `fallback`. A weights-only file holds one set: without a flag that one is used; a flag asking
 * for the other is refused naming the flag.
 */
export function pickWeights(c: Checkpoint, file: string, want: 'ema' | 'raw' | undefined, fallback: 'ema' | 'raw', flag: string): Map<string, Tensor> {
  if (c.exported) {
    if (want && want !== c.exported) throw new Error(`${flag}: ${file} is a weights-only export holding the ${c.exported === 'ema' ? 'EMA' : 'raw'} weights; use the training checkpoint, or export the ${want === 'ema' ? 'EMA' : 'raw'} weights (diffactor export${want === 'raw' ? ' --raw' : ''})`);
    return c.model;
  }
  return (want ?? fallback) === 'ema' ? c.ema : c.model;
}
