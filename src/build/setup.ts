// From a run spec to the objects a run needs: the training dataset and the model config. Shared by
// the reference trainer, `sample`, `predict` and (later) the actor runtime, so all of them build
// the same things from the same spec.
import { openDataset, type ImageDataset } from '../data/index.ts';
import { sitPreset } from '../models/presets.ts';
import type { SiTConfig } from '../models/config.ts';
import { vaeFactor, type VAEConfig } from '../models/vae.ts';
import type { RunSpec } from '../spec/schema.ts';
import { jointVae, methodsOf, vaeConfigFor } from './parts.ts';
import { latentSpaceOf } from './latentSpace.ts';

export { vaeConfigFor };

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

/**
 * The preset named by the spec, fitted to the data (channels, size, classes) and overridden by its
 * fields. With a jointly trained VAE, or a frozen latent space (`latent.autoencoder`), the model is
 * fitted to the latents (channels, side / factor).
 */
export function modelConfigFor(spec: RunSpec, data: Pick<ImageDataset, 'channels' | 'height' | 'numClasses'>, vae?: VAEConfig): SiTConfig {
  const m = spec.model;
  const v = vae ?? vaeConfigFor(spec, data) ?? null;
  const space = v ? null : latentSpaceOf(spec);
  if (space && space.inputChannels !== data.channels) {
    throw new Error(`spec '${spec.name}': latent.autoencoder ${space.file} encodes ${space.inputChannels}-channel images but the data has ${data.channels}`);
  }
  const family = m.family ?? methodsOf(spec).map((a) => a.def.family).find((f) => f) ?? 'SiT';
  const presetName = m.preset.replace(/^(SiT|DiT)-/, `${family}-`);
  const objectiveNeedsSigma = spec.diffusion.objective === 'ddpm';
  return sitPreset(presetName, {
    family,
    inChannels: v ? v.latentChannels : space ? space.channels : data.channels,
    inputSize: v ? data.height / vaeFactor(v) : space ? space.side(data.height) : data.height,
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

/**
 * The methods fix the objective and the family (the DiT baseline: DDPM on a DiT; every other
 * method: flow matching on a SiT), some the sampler; every block a method names must exist.
 */
export function checkSpecConsistency(spec: RunSpec, depth?: number): void {
  const ms = methodsOf(spec);
  const objective = ms.map((a) => a.def.objective).find((o) => o) ?? 'velocity';
  if (spec.diffusion.objective !== objective) {
    throw new Error(`spec '${spec.name}': ${spec.protocol} needs diffusion.objective: ${objective} (got ${spec.diffusion.objective})`);
  }
  if (objective === 'velocity' && (spec.model.family === 'DiT' || spec.model.learn_sigma) && ms.some((a) => a.def.family !== 'SiT' || a.def.section)) {
    throw new Error(`spec '${spec.name}': ${spec.protocol} trains a SiT (model.family SiT, learn_sigma false)`);
  }
  checkSampler(spec, spec.sample.sampler, 'sample.sampler');
  if (spec.latent && jointVae(spec)) {
    throw new Error(`spec '${spec.name}': latent.autoencoder names a frozen latent space, but ${spec.protocol} trains its own VAE; give one of them`);
  }
  for (const a of ms) {
    a.def.check?.(a.s, spec as never);
    if (depth !== undefined) {
      for (const [field, k] of Object.entries(a.def.blocks?.(a.s) ?? {})) {
        if (k > depth) throw new Error(`spec '${spec.name}': ${field} = ${k} but the model has ${depth} blocks`);
      }
    }
  }
  const e = spec.encoder;
  if (e?.checkpoint) {
    const ignored = (['patch_size', 'embed_dim', 'depth'] as const).filter((k) => e[k] !== undefined);
    if (ignored.length) throw new Error(`spec '${spec.name}': encoder.${ignored.join(', encoder.')} only apply to the seed-initialised encoder, not to encoder.checkpoint`);
  }
}

/** The samplers of each objective: a flow model integrates its velocity, a DDPM model reverses its chain. */
export const OBJECTIVE_SAMPLERS = { velocity: ['euler', 'heun', 'sde'], ddpm: ['ddpm', 'ddim'] } as const;

/** The samplers a model trained by `spec` can draw with: its objective's, narrowed by each method's (REG: sde). */
export function samplersFor(spec: RunSpec): string[] {
  return methodsOf(spec).reduce<string[]>((ok, a) => (a.def.samplers ? ok.filter((s) => a.def.samplers!.includes(s)) : ok), [...OBJECTIVE_SAMPLERS[spec.diffusion.objective]]);
}

/**
 * Refuses a sampler the spec's model was not trained for, in one line naming the ones it takes.
 * `where` names the setting (`sample.sampler` in a spec, `--sampler` on the command line). Another
 * family does not fail loudly by itself: DDPM on a velocity model draws blobs, an ODE on a
 * learn-sigma DiT reads twice the channels.
 */
export function checkSampler(spec: RunSpec, sampler: string, where: string): void {
  const allowed = samplersFor(spec).join(' or ');
  const objective = spec.diffusion.objective;
  if (!(OBJECTIVE_SAMPLERS[objective] as readonly string[]).includes(sampler)) {
    throw new Error(`spec '${spec.name}': ${where} ${sampler} does not fit objective ${objective} (velocity: euler|heun|sde; ddpm: ddpm|ddim): use ${allowed}`);
  }
  for (const a of methodsOf(spec)) {
    if (a.def.samplers && !a.def.samplers.includes(sampler)) {
      throw new Error(`spec '${spec.name}': ${a.def.title} samples with ${a.def.samplers.join(' or ')} only (${where}: ${allowed}, got ${sampler})`);
    }
  }
}
