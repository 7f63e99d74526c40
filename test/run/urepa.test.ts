// U-REPA end to end on the tiny spec (test/actors/specs.ts TINY): on actors, 6 steps equal 3 steps
// + a resume of 3 bit for bit (metrics with its `proj` and `manifold` terms, weights, EMA, heads,
// optimiser, RNG); the checkpoint holds the U-shaped SiT (its skips) under official names; the
// final grid and `diffactor sample` draw with the U-shaped SiT (a plain SiT cannot load the
// weights); the evaluation (FD, probe on the hidden state of a middle block) runs on it.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runActors } from '../../src/run/actorRun.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { samplingModel } from '../../src/build/parts.ts';
import { modelConfigFor, openTrainData } from '../../src/build/setup.ts';
import { sample } from '../../src/cli/sample.ts';
import { Evaluation } from '../../src/eval/evaluate.ts';
import { Trainer } from '../../src/run/reference.ts';
import { createSiT } from '../../src/models/sit.ts';
import { USiT } from '../../src/methods/u-repa/model.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tinySpec } from '../actors/specs.ts';

const tmp = (what: string) => mkdtempSync(path.join(tmpdir(), `urepa-${what}-`));
const ckpt = (out: string) => loadCheckpoint(path.join(out, 'checkpoint.safetensors'));
const metrics = (dir: string) => readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => { const { wall_s: _w, it_s: _i, ...m } = JSON.parse(l); return m; });
function same(a: Map<string, Tensor>, b: Map<string, Tensor>, what: string): void {
  expect([...b.keys()].sort(), what).toEqual([...a.keys()].sort());
  expect(a.size, what).toBeGreaterThan(0);
  for (const [k, t] of a) expect(Array.from(b.get(k)!.data), `${what} ${k}`).toEqual(Array.from(t.data));
}

describe('U-REPA runs', () => {
  it('on actors: 6 steps == 3 steps + resume 3; skips in the checkpoint; the grid and `sample` draw with the U-shaped SiT', async () => {
    const spec = tinySpec('u-repa', { train: { ...tinySpec('u-repa').train, steps: 6, checkpoint_every: 3, schedule: 'constant' } });
    const a = tmp('whole');
    await runActors({ spec, out: a, placement: 'local', quiet: true });
    expect(existsSync(path.join(a, 'samples.png'))).toBe(true);
    const b = tmp('resumed');
    await runActors({ spec: { ...spec, train: { ...spec.train, steps: 3 } }, out: b, placement: 'local', quiet: true, samples: false });
    await runActors({ out: b, resume: true, steps: 6, placement: 'local', quiet: true, samples: false });
    const m = metrics(a);
    expect(metrics(b)).toEqual(m);
    expect(m).toHaveLength(6);
    for (const l of m) for (const k of ['diff', 'proj', 'manifold']) expect(Number.isFinite(l[k]), `${k} at step ${l.step}`).toBe(true);
    const [ca, cb] = [ckpt(a), ckpt(b)];
    for (const key of ['model', 'ema', 'proj', 'opt'] as const) same(ca[key], cb[key], key);
    expect(cb.state.rng).toEqual(ca.state.rng);
    expect([...ca.model.keys()].filter((k) => k.startsWith('skips.')).sort()).toEqual(['skips.0.bias', 'skips.0.weight']);
    expect([...ca.proj.keys()].every((k) => k.startsWith('projectors.0.'))).toBe(true);

    // sampling rebuilds the backbone from the spec the checkpoint carries
    const model = samplingModel(ca.spec, ca.config, ca.ema);
    expect(model).toBeInstanceOf(USiT);
    expect(() => createSiT(ca.config, 0).loadStateDict(ca.ema)).toThrow(/unexpected keys: skips/);
    const png = path.join(tmp('sample'), 'grid.png');
    sample({ checkpoint: path.join(a, 'checkpoint.safetensors'), out: png, sampler: 'euler', steps: 2, perClass: 1 });
    expect(existsSync(png)).toBe(true);
  }, 240_000);

  it('evaluation: finite metrics from the U-shaped SiT, the probe reading a middle block on its 2×2 grid', () => {
    const dir = tmp('eval');
    const files = writeTestStandins(dir);
    const evalSection = { samples: 20, steps: 2, reference: 40, probe_train: 40, probe_test: 20, classifier: files.classifier, encoder: files.encoder, sfid_channels: 2, block: 2 };
    const spec = tinySpec('u-repa', { eval: evalSection });
    const data = openTrainData(spec);
    const ev = Evaluation.prepare(spec, modelConfigFor(spec, data));
    const trainer = new Trainer(spec, data);
    expect(trainer.emaModel).toBeInstanceOf(USiT);
    const r = ev.run(trainer.emaModel as never);
    for (const [k, v] of Object.entries(r)) expect(Number.isFinite(v), k).toBe(true);
    for (let i = 0; i < 3; i++) trainer.trainStep();
    expect(ev.run(trainer.model as never).cknna).not.toBe(r.cknna);
  }, 120_000);
});
