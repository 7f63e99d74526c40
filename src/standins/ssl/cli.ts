// `diffactor standin encoder`: the command-line face of train.ts — checks the options, names the
// default output (runs/standins/encoder-<data>.safetensors, never the shipped file unless --out
// names it), prints the backend, and runs trainEncoder (which prints progress, the probe
// accuracies and where it wrote). Not here: the training (train.ts, dino.ts).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { backendInfo } from '../../kernels/index.ts';
import { trainEncoder } from './train.ts';
import { SSL_OBJECTIVES, type SslObjective } from './dino.ts';

export const ENCODER_DATA = ['fashion-mnist', 'builtin'] as const;
export type EncoderData = (typeof ENCODER_DATA)[number];

/**
 * Where `diffactor standin <kind>` writes without --out: a run directory, so that retraining never
 * replaces the shipped specs/standins/<kind>-<data>.safetensors (the weights every spec and test
 * reads) unless --out names that file.
 */
export const standinRunFile = (kind: string, data: string): string => path.join('runs', 'standins', `${kind}-${data}.safetensors`);

/** The hint printed after writing to the default: how to replace the shipped file deliberately. */
export const replaceShippedHint = (kind: string, data: string): string =>
  `the shipped specs/standins/${kind}-${data}.safetensors is unchanged; to replace it, rerun with --out specs/standins/${kind}-${data}.safetensors`;

export interface StandinEncoderCliOptions {
  data?: string; objective?: string; minutes?: number; steps?: number; out?: string; seed?: number; batchSize?: number; probeTrain?: number;
}

export function standinEncoder(o: StandinEncoderCliOptions): void {
  const data = (o.data ?? 'fashion-mnist') as EncoderData;
  if (!ENCODER_DATA.includes(data)) throw new Error(`standin encoder: --data must be one of ${ENCODER_DATA.join(', ')}, got '${o.data}'`);
  const objective = (o.objective ?? 'contrastive') as SslObjective;
  if (!SSL_OBJECTIVES.includes(objective)) throw new Error(`standin encoder: --objective must be one of ${SSL_OBJECTIVES.join(', ')}, got '${o.objective}'`);
  if (o.minutes !== undefined && !(o.minutes > 0)) throw new Error(`standin encoder: --minutes must be > 0, got ${o.minutes}`);
  const out = o.out ?? standinRunFile('encoder', data);
  console.error(`diffactor standin encoder: ${data} → ${out}  (kernels: ${backendInfo.backend}${backendInfo.backend === 'native' ? `/${backendInfo.isa}, ${backendInfo.threads} threads` : ''})`);
  mkdirSync(path.dirname(out), { recursive: true }); // an unwritable path fails before training, not after
  trainEncoder({ data, objective, out, steps: o.steps, minutes: o.steps === undefined ? o.minutes ?? 15 : undefined, seed: o.seed, batchSize: o.batchSize, probeTrain: o.probeTrain });
  if (o.out === undefined) console.error(replaceShippedHint('encoder', data));
}
