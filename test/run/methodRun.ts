// What every method's end-to-end run test checks, written once: on actors, a run of 6 steps equals
// 3 steps + a resume of 3 bit for bit (metrics, weights, EMA, optimiser — and heads where the method
// has them — and the RNG streams); the final grid is written; the checkpoint's weights rebuild the
// method's own sampling model (a plain SiT refuses them) and `diffactor sample` draws with it; the
// Evaluator's metrics are finite on the method's model and move when it trains.
// The method's own checks (its loss terms, its weights' names) stay in its test file.
import { expect } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runActors } from '../../src/run/actorRun.ts';
import { loadCheckpoint, type Checkpoint } from '../../src/build/checkpoint.ts';
import { samplingModel, type Backbone } from '../../src/build/parts.ts';
import { modelConfigFor, openTrainData } from '../../src/build/setup.ts';
import { sample } from '../../src/cli/sample.ts';
import { Evaluation } from '../../src/eval/evaluate.ts';
import { Trainer } from '../../src/run/reference.ts';
import { createSiT } from '../../src/models/sit.ts';
import type { RunSpec } from '../../src/spec/schema.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tinySpec } from '../actors/specs.ts';

type ModelClass = abstract new (...args: never[]) => Backbone;

/** A fresh temporary directory named after the method and what it holds. */
export const tmpDir = (method: string, what: string): string => mkdtempSync(path.join(tmpdir(), `${method}-${what}-`));

export const readCheckpoint = (out: string): Checkpoint => loadCheckpoint(path.join(out, 'checkpoint.safetensors'));

/** metrics.jsonl without the wall-clock fields (which differ between two runs of the same steps). */
export function readMetrics(dir: string): Record<string, number>[] {
  return readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
    const { wall_s: _w, it_s: _i, ...m } = JSON.parse(l);
    return m;
  });
}

/** The same names and, bit for bit, the same values. */
export function expectSameTensors(a: Map<string, Tensor>, b: Map<string, Tensor>, what: string): void {
  expect([...b.keys()].sort(), what).toEqual([...a.keys()].sort());
  expect(a.size, what).toBeGreaterThan(0);
  for (const [k, t] of a) expect(Array.from(b.get(k)!.data), `${what} ${k}`).toEqual(Array.from(t.data));
}

/**
 * `spec` trained 6 steps at once (with the final grid) and as 3 steps + a resume of 3 (without),
 * both on actors; every metrics line, the tensor groups `groups` and the RNG streams agree bit for
 * bit, and every line carries a finite value for each of `terms`. Returns the whole run's directory,
 * metrics and checkpoint for the method's own checks.
 */
export async function expectResumeExact(method: string, spec: RunSpec, terms: readonly string[], groups: readonly ('model' | 'ema' | 'proj' | 'opt')[] = ['model', 'ema', 'opt']): Promise<{ dir: string; metrics: Record<string, number>[]; checkpoint: Checkpoint }> {
  const steps = { ...spec, train: { ...spec.train, steps: 6, checkpoint_every: 3, schedule: 'constant' as const } };
  const a = tmpDir(method, 'whole');
  await runActors({ spec: steps, out: a, placement: 'local', quiet: true });
  expect(existsSync(path.join(a, 'samples.png'))).toBe(true);
  const b = tmpDir(method, 'resumed');
  await runActors({ spec: { ...steps, train: { ...steps.train, steps: 3 } }, out: b, placement: 'local', quiet: true, samples: false });
  await runActors({ out: b, resume: true, steps: 6, placement: 'local', quiet: true, samples: false });
  const m = readMetrics(a);
  expect(readMetrics(b)).toEqual(m);
  expect(m).toHaveLength(6);
  for (const l of m) for (const k of terms) expect(Number.isFinite(l[k]), `${k} at step ${l.step}`).toBe(true);
  const [ca, cb] = [readCheckpoint(a), readCheckpoint(b)];
  for (const key of groups) expectSameTensors(ca[key], cb[key], key);
  expect(cb.state.rng).toEqual(ca.state.rng);
  return { dir: a, metrics: m, checkpoint: ca };
}

/**
 * The run's checkpoint rebuilds a `Model` from the spec it carries (a plain SiT refuses its weights
 * with `refusal`) and `diffactor sample` writes a grid with it. Returns the sampling model.
 */
export function expectSamplesWith(method: string, dir: string, Model: ModelClass, refusal: RegExp = /unexpected keys/): Backbone {
  const c = readCheckpoint(dir);
  const model = samplingModel(c.spec, c.config, c.ema);
  expect(model).toBeInstanceOf(Model);
  expect(() => createSiT(c.config, 0).loadStateDict(c.ema)).toThrow(refusal);
  const png = path.join(tmpDir(method, 'sample'), 'grid.png');
  sample({ checkpoint: path.join(dir, 'checkpoint.safetensors'), out: png, sampler: 'euler', steps: 2, perClass: 1 });
  expect(existsSync(png)).toBe(true);
  return model;
}

/**
 * The Evaluator on the tiny spec of `method` (hidden state read after block `block`): every metric
 * finite on the untrained EMA model, an instance of `Model`; with `moves`, CKNNA changes after three
 * training steps of the raw model.
 */
export function expectEvaluates(method: string, Model: ModelClass, o: { block: number; moves?: boolean }): void {
  const files = writeTestStandins(tmpDir(method, 'eval'));
  const evalSection = { samples: 20, steps: 2, reference: 40, probe_train: 40, probe_test: 20, classifier: files.classifier, encoder: files.encoder, sfid_channels: 2, block: o.block };
  const spec = tinySpec(method, { eval: evalSection });
  const data = openTrainData(spec);
  const ev = Evaluation.prepare(spec, modelConfigFor(spec, data));
  const trainer = new Trainer(spec, data);
  expect(trainer.emaModel).toBeInstanceOf(Model);
  const r = ev.run(trainer.emaModel as never);
  for (const [k, v] of Object.entries(r)) expect(Number.isFinite(v), k).toBe(true);
  if (!o.moves) return;
  for (let i = 0; i < 3; i++) trainer.trainStep();
  expect(ev.run(trainer.model as never).cknna).not.toBe(r.cknna);
}
