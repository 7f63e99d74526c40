// From a run spec to the objects a run needs: the training dataset and the model config. Shared by
// the reference trainer, `sample`, `predict` and (later) the actor runtime, so all of them build
// the same things from the same spec.
import { openDataset, type ImageDataset } from '../data/index.ts';
import { sitPreset } from '../models/presets.ts';
import type { SiTConfig } from '../models/config.ts';
import type { RunSpec } from '../spec/schema.ts';

/** The training set the spec names (or `override`, e.g. from --data). */
export function openTrainData(spec: RunSpec, override?: string): ImageDataset {
  const name = override ?? spec.data.dataset;
  return openDataset(name, {
    split: 'train',
    size: spec.data.size,
    count: name === 'builtin' ? spec.data.builtin_count : undefined,
    seed: spec.seed,
  });
}

/** The preset named by the spec, fitted to the data (channels, size, classes) and overridden by its fields. */
export function modelConfigFor(spec: RunSpec, data: Pick<ImageDataset, 'channels' | 'height' | 'numClasses'>): SiTConfig {
  const m = spec.model;
  const family = m.family ?? (spec.protocol === 'dit-baseline' ? 'DiT' : 'SiT');
  const presetName = m.preset.replace(/^(SiT|DiT)-/, `${family}-`);
  const objectiveNeedsSigma = spec.diffusion.objective === 'ddpm';
  return sitPreset(presetName, {
    family,
    inChannels: data.channels,
    inputSize: data.height,
    numClasses: data.numClasses,
    classDropoutProb: m.class_dropout_prob,
    ...(m.patch_size !== undefined && { patchSize: m.patch_size }),
    ...(m.hidden_size !== undefined && { hiddenSize: m.hidden_size }),
    ...(m.depth !== undefined && { depth: m.depth }),
    ...(m.num_heads !== undefined && { numHeads: m.num_heads }),
    ...(m.mlp_ratio !== undefined && { mlpRatio: m.mlp_ratio }),
    learnSigma: m.learn_sigma ?? (family === 'DiT' && objectiveNeedsSigma),
  });
}

/** Protocols fix the objective: the DiT baseline is DDPM, the SiT baseline flow matching. */
export function checkSpecConsistency(spec: RunSpec): void {
  if (spec.protocol === 'dit-baseline' && spec.diffusion.objective !== 'ddpm') {
    throw new Error(`spec '${spec.name}': protocol dit-baseline needs diffusion.objective: ddpm (got ${spec.diffusion.objective})`);
  }
  if (spec.protocol === 'sit-baseline' && spec.diffusion.objective !== 'velocity') {
    throw new Error(`spec '${spec.name}': protocol sit-baseline needs diffusion.objective: velocity (got ${spec.diffusion.objective})`);
  }
  const flowSampler = ['euler', 'heun', 'sde'].includes(spec.sample.sampler);
  if (flowSampler !== (spec.diffusion.objective === 'velocity')) {
    throw new Error(`spec '${spec.name}': sample.sampler ${spec.sample.sampler} does not fit objective ${spec.diffusion.objective} (velocity: euler|heun|sde; ddpm: ddpm|ddim)`);
  }
}
