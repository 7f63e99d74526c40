// The registry: every method diffactor trains, one line each. The spec schema (its `methods:` list
// and sections), the step machine, the reference engine, the roles, RNG streams, setup checks and
// the study's labels all ask here; nothing else names a method.
import type { MethodDefinition, SpecView } from './method.ts';
import { sitBaseline } from './sit-baseline/index.ts';
import { ditBaseline } from './dit-baseline/index.ts';
import { repa } from './repa/index.ts';
import { sra } from './sra/index.ts';
import { reg } from './reg/index.ts';
import { repaE } from './repa-e/index.ts';
import { layerSync } from './layersync/index.ts';
import { uRepa } from './u-repa/index.ts';
import { softRepa } from './softrepa/index.ts';
import { redi } from './redi/index.ts';
import { deepflow } from './deepflow/index.ts';
import { ddt } from './ddt/index.ts';
import { digit } from './digit/index.ts';
import { rae } from './rae/index.ts';
import { ditDh } from './dit-dh/index.ts';
import { epg } from './epg/index.ts';
import { uniflow } from './uniflow/index.ts';
import { svg } from './svg/index.ts';
import { svgDit } from './svg-dit/index.ts';

export const METHODS: readonly MethodDefinition[] = [
  sitBaseline,
  ditBaseline,
  repa,
  sra,
  reg,
  repaE,
  layerSync,
  uRepa,
  softRepa,
  redi,
  deepflow,
  ddt,
  digit,
  rae,
  ditDh,
  epg,
  uniflow,
  svg,
  svgDit,
];

/** The method a spec without `methods:` trains. */
export const DEFAULT_METHOD = sitBaseline.name;

/**
 * The papers' orderings a study checks, by the names of the runs compared (a spec's name; the
 * study runs one spec per method, plus controls such as repa-latent: REPA-E's run with its VAE frozen).
 */
export const CLAIMS: readonly { better: string; than: string; claim: string }[] = [
  { better: 'repa', than: 'sit-baseline', claim: 'REPA better than the baseline at equal steps' },
  { better: 'reg', than: 'repa', claim: 'REG better than REPA' },
  { better: 'sra', than: 'sit-baseline', claim: 'SRA better than the baseline without an external encoder' },
  { better: 'layersync', than: 'sit-baseline', claim: 'LayerSync better than the baseline (self-alignment, no encoder, no parameters)' },
  { better: 'repa-e', than: 'repa-latent', claim: 'REPA-E better than REPA on the same VAE kept frozen (the end-to-end tuning itself)' },
  { better: 'u-repa', than: 'repa', claim: 'U-REPA (U-shaped SiT aligned at its middle, + manifold loss) better than REPA on the same budget' },
  { better: 'redi', than: 'sit-baseline', claim: 'ReDi (image and PCA feature channels diffused jointly) better than the baseline at equal steps' },
  { better: 'redi-rg', than: 'redi', claim: 'ReDi sampled with representation guidance (w_r 1.5) better than without (the same training)' },
  { better: 'deepflow', than: 'sit-baseline', claim: 'DeepFlow (deep supervision of K branches at shifted times, VeRA blocks between them) better than the baseline at equal steps' },
  { better: 'ddt', than: 'sit-baseline', claim: 'DDT (condition encoder + velocity decoder, the same number of blocks) better than the SiT of equal size at equal steps' },
  { better: 'digit', than: 'digit-raw', claim: 'DiGIT: k-means tokens of the frozen encoder\'s features make AR generation better than k-means tokens of raw pixel patches (same K, GPT and budget)' },
  { better: 'repa-e', than: 'repa', claim: 'REPA-E (latent) better than REPA (pixels) — this also changes the space the SiT works in' },
  { better: 'rae', than: 'rae-vae', claim: 'RAE stage 2: diffusion in the representation space (the DiT^DH in a RAE stage-1 run\'s encoder-token space) trains faster than in the VAE space (the same DiT^DH, data and budget in the stand-in VAE\'s latent space): better at equal steps' },
  { better: 'epg', than: 'sit-latent', claim: 'EPG (pixel space, no VAE: a self-supervised pre-trained encoder, then x0 diffusion with a decoder) better than the latent baseline (the SiT baseline on the frozen VAE stand-in\'s latents) at equal stage-2 steps; EPG\'s stage 1 is extra training' },
  { better: 'svg', than: 'sit-latent', claim: 'SVG: no VAE needed — diffusion in SVG\'s latent (the frozen encoder\'s tokens + a trained residual, matched; the DiT with q/k-norm and SVG\'s time shifts) better than the SiT baseline in the frozen VAE stand-in\'s latent space at equal stage-2 steps (same data, SiT size, batch, schedule and sampler); SVG\'s stage 1 is extra training' },
];

const byName = new Map(METHODS.map((m) => [m.name, m]));

export function methodNames(): string[] {
  return METHODS.map((m) => m.name);
}

export function methodByName(name: string): MethodDefinition {
  const m = byName.get(name);
  if (!m) throw new Error(`unknown method '${name}' (registered: ${methodNames().join(', ')})`);
  return m;
}

/** A method of a run with its parsed spec section (undefined when it has none). */
export interface ActiveMethod<S = any> { def: MethodDefinition<S>; s: S }

/** The run's methods, in the spec's order, each with its section. */
export function activeMethods(spec: Pick<SpecView, 'methods'> & Record<string, unknown>): ActiveMethod[] {
  return spec.methods.map((name) => {
    const def = methodByName(name);
    return { def, s: def.section ? spec[def.section.key] : undefined };
  });
}

/** Why these methods cannot train together (two change the same thing, or want different objectives), or null. */
export function incompatibility(defs: readonly MethodDefinition[]): string | null {
  for (let i = 0; i < defs.length; i++) {
    for (let j = i + 1; j < defs.length; j++) {
      const a = defs[i], b = defs[j];
      if (a.name === b.name) return `method '${a.name}' is listed twice`;
      const both = (a.changes ?? []).filter((c) => (b.changes ?? []).includes(c));
      if (both.length) return `methods '${a.name}' and '${b.name}' both change the ${both.join(' and ')} of training; they cannot be combined`;
      if ((a.objective ?? 'velocity') !== (b.objective ?? 'velocity')) {
        return `methods '${a.name}' (${a.objective ?? 'velocity'}) and '${b.name}' (${b.objective ?? 'velocity'}) train different objectives; they cannot be combined`;
      }
    }
  }
  return null;
}

/** The spec sections a run of these methods reads: their own and the shared ones they name. */
export function sectionsRead(defs: readonly MethodDefinition[]): string[] {
  return [...new Set(defs.flatMap((d) => [...(d.section ? [d.section.key] : []), ...(d.reads ?? [])]))];
}

/** A method's section of a parsed spec, typed by its definition (tests, tools). */
export function sectionOf<S>(spec: Record<string, unknown>, def: MethodDefinition<S>): S {
  if (!def.section) throw new Error(`method '${def.name}' has no spec section`);
  const s = spec[def.section.key];
  if (s === undefined) throw new Error(`the spec has no '${def.section.key}' section (does it list ${def.name}?)`);
  return s as S;
}
