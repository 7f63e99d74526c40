// Loading the perceptual loss's frozen feature net (perceptualNet.ts) from a file: the shipped
// stand-ins (specs/standins/perceptual-<data>.safetensors, one per dataset it was trained on) or a
// path. Here, below the methods, so that a method's loss (REPA-E's VAE loss) can load it; training
// and saving stay in standins/perceptual.ts, which re-exports these. docs/models/perceptual.md.
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { readSafetensors } from '../io/safetensors.ts';
import { createPerceptualNet, parsePerceptualNetConfig, type PerceptualNet } from './perceptualNet.ts';

/** The format tag in __metadata__.format; loadPerceptualNet refuses files without it. */
export const PERCEPTUAL_FORMAT = 'diffactor.standin.perceptual/1';

/** The datasets a perceptual net ships for (the stand-in datasets of standins/classifier.ts). */
export const PERCEPTUAL_STANDIN_DATA = ['fashion-mnist', 'builtin'] as const;
export type PerceptualStandinData = (typeof PERCEPTUAL_STANDIN_DATA)[number];

export const shipsPerceptualNet = (data: string): data is PerceptualStandinData => (PERCEPTUAL_STANDIN_DATA as readonly string[]).includes(data);

/** Eval mode, no parameter requires grad, and writes through the in-place API throw. */
export function freezePerceptualNet(model: PerceptualNet): PerceptualNet {
  model.eval();
  for (const p of model.parameters()) p.requireGrad(false).freeze();
  return model;
}

/** The shipped weights: specs/standins/perceptual-<data>.safetensors in the repo. */
export function defaultPerceptualFile(data: PerceptualStandinData): string {
  return fileURLToPath(new URL(`../../specs/standins/perceptual-${data}.safetensors`, import.meta.url));
}

/**
 * The frozen feature net of a shipped file (by dataset name) or of a path: strict state_dict load,
 * eval mode, no parameter requiring grad, parameters write-protected. `metadata` is the file's.
 */
export function loadPerceptualNet(dataOrFile: PerceptualStandinData | string): { net: PerceptualNet; metadata: Record<string, string>; file: string } {
  const file = shipsPerceptualNet(dataOrFile) ? defaultPerceptualFile(dataOrFile) : dataOrFile;
  if (!existsSync(file)) throw new Error(`loadPerceptualNet: ${file} does not exist (train it: npx tsx scripts/train-perceptual.ts --data ${dataOrFile})`);
  const { tensors, metadata } = readSafetensors(file);
  if (metadata?.format !== PERCEPTUAL_FORMAT) throw new Error(`loadPerceptualNet: ${file} is not a perceptual-net file (format '${metadata?.format}', want '${PERCEPTUAL_FORMAT}')`);
  const config = parsePerceptualNetConfig(metadata.config);
  const net = createPerceptualNet(config, 0);
  net.loadStateDict(tensors, true);
  return { net: freezePerceptualNet(net), metadata: { ...metadata }, file };
}

const loaded = new Map<string, PerceptualNet>();

/**
 * The perceptual net a method's section names — `<field>.perceptual_net` (a file, or null for the
 * one shipped for the dataset) when `<field>.perceptual_weight` > 0 — loaded once per file per
 * process (frozen: sharing it between models is safe), or null at weight 0. Errors name the field.
 */
export function sectionPerceptualNet(field: string, s: { perceptual_weight: number; perceptual_net: string | null }, dataset: string, channels: number): PerceptualNet | null {
  if (s.perceptual_weight === 0) return null;
  if (s.perceptual_net === null && !shipsPerceptualNet(dataset)) {
    throw new Error(`${field}.perceptual_net is null but no perceptual net ships for dataset '${dataset}' (only ${PERCEPTUAL_STANDIN_DATA.join(', ')}): name a perceptual-net file (docs/models/perceptual.md; for 3-channel images e.g. specs/standins/perceptual-builtin.safetensors) or set ${field}.perceptual_weight 0`);
  }
  const file = s.perceptual_net ?? dataset;
  let net = loaded.get(file);
  if (!net) {
    try { net = loadPerceptualNet(file).net; } catch (e) { throw new Error(`${field}.perceptual_net: ${(e as Error).message}`); }
    loaded.set(file, net);
  }
  if (net.config.inChannels !== channels) throw new Error(`${field}.perceptual_net ${s.perceptual_net ?? `(the ${file} stand-in)`} reads ${net.config.inChannels}-channel images but the data has ${channels}`);
  return net;
}
