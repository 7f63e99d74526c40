// Untrained checkpoints of the tiny specs (test/actors/specs.ts), written in milliseconds: the
// CLI tests check what a command accepts and refuses, not what a trained model draws.
import path from 'node:path';
import { saveCheckpoint, type Checkpoint } from '../../src/build/checkpoint.ts';
import { modelConfigFor, openTrainData } from '../../src/build/setup.ts';
import { buildBackbone, buildEncoder, buildVae, readsEncoder, vaeConfigFor } from '../../src/build/parts.ts';
import type { RunSpec } from '../../src/spec/schema.ts';
import { tinySpec } from '../actors/specs.ts';

/** Writes `<dir>/<protocol>.safetensors` (model = EMA = the seed's weights) and returns its path and contents. */
export function untrainedCheckpoint(dir: string, protocol: string, over: Record<string, unknown> = {}): { file: string; c: Checkpoint } {
  const spec: RunSpec = tinySpec(protocol, over);
  const data = openTrainData(spec);
  const vaeConfig = vaeConfigFor(spec, data);
  const config = modelConfigFor(spec, data, vaeConfig);
  const encoderDim = readsEncoder(spec) ? buildEncoder(spec, data, config).dim : null;
  const model = buildBackbone(spec, config, encoderDim, vaeConfig).stateDict();
  const c: Checkpoint = {
    config, spec, model, ema: model, proj: new Map(), opt: new Map(),
    state: { step: 0, rng: {}, loader: {} as Checkpoint['state']['loader'], optStep: 0, wallSeconds: 0 },
    ...(vaeConfig && { vae: buildVae(spec, vaeConfig).stateDict() }),
  };
  const file = path.join(dir, `${protocol.replace(/\+/g, '-')}.safetensors`);
  saveCheckpoint(file, c);
  return { file, c };
}
