// SoftREPA end to end on the tiny spec (test/actors/specs.ts TINY): stage 1 (the caption-conditioned
// SiT) trains on actors; stage 2 loads that run's checkpoint (its EMA weights) as softrepa.init and,
// on actors, 6 steps equal 3 steps + a resume of 3 bit for bit (metrics with the `contrastive` term
// and `diff` logged at dweight 0, weights, EMA, optimiser, RNG); the stage-2 checkpoint holds
// dc_tokens, every other weight equal to stage 1's EMA; the final grid and `diffactor sample` draw
// with the caption-conditioned SiT; the evaluation (FD, class accuracy, probe) runs on it.
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
import { CaptionSiT } from '../../src/methods/softrepa/model.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { TINY, tinySpec } from '../actors/specs.ts';

const tmp = (what: string) => mkdtempSync(path.join(tmpdir(), `softrepa-${what}-`));
const ckpt = (out: string) => loadCheckpoint(path.join(out, 'checkpoint.safetensors'));
const metrics = (dir: string) => readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => { const { wall_s: _w, it_s: _i, ...m } = JSON.parse(l); return m; });
function same(a: Map<string, Tensor>, b: Map<string, Tensor>, what: string): void {
  expect([...b.keys()].sort(), what).toEqual([...a.keys()].sort());
  expect(a.size, what).toBeGreaterThan(0);
  for (const [k, t] of a) expect(Array.from(b.get(k)!.data), `${what} ${k}`).toEqual(Array.from(t.data));
}
const section = TINY.softrepa.softrepa as Record<string, unknown>;

describe('SoftREPA runs', () => {
  it('stage 1 then stage 2 on actors: 6 steps == 3 + resume 3; only dc_tokens differs from stage 1; the grid and `sample` draw', async () => {
    const base = tinySpec('softrepa');
    const pre = tinySpec('softrepa', { softrepa: { ...section, stage: 'pretrain', init: null }, train: { ...base.train, steps: 4, checkpoint_every: 4 } });
    const p = tmp('pretrain');
    await runActors({ spec: pre, out: p, placement: 'local', quiet: true, samples: false });
    const c1 = ckpt(p);
    expect(c1.model.has('dc_tokens')).toBe(false);
    expect(metrics(p).every((l) => Number.isFinite(l.diff) && l.contrastive === undefined)).toBe(true);

    const spec = tinySpec('softrepa', { softrepa: { ...section, init: path.join(p, 'checkpoint.safetensors') }, train: { ...base.train, steps: 6, checkpoint_every: 3, schedule: 'constant' } });
    const a = tmp('whole');
    await runActors({ spec, out: a, placement: 'local', quiet: true });
    expect(existsSync(path.join(a, 'samples.png'))).toBe(true);
    const b = tmp('resumed');
    await runActors({ spec: { ...spec, train: { ...spec.train, steps: 3 } }, out: b, placement: 'local', quiet: true, samples: false });
    await runActors({ out: b, resume: true, steps: 6, placement: 'local', quiet: true, samples: false });
    const m = metrics(a);
    expect(metrics(b)).toEqual(m);
    expect(m).toHaveLength(6);
    for (const l of m) for (const k of ['diff', 'contrastive']) expect(Number.isFinite(l[k]), `${k} at step ${l.step}`).toBe(true);
    // dweight 0: the loss is the contrastive term alone
    for (const l of m) expect(l.loss).toBeCloseTo(l.contrastive, 6);
    const [ca, cb] = [ckpt(a), ckpt(b)];
    for (const key of ['model', 'ema', 'opt'] as const) same(ca[key], cb[key], key);
    expect(cb.state.rng).toEqual(ca.state.rng);
    for (const [k, t] of ca.ema) {
      if (k === 'dc_tokens') continue;
      expect(Array.from(t.data), `stage-2 weight ${k} is stage 1's EMA`).toEqual(Array.from(c1.ema.get(k)!.data));
    }
    expect([...ca.opt.keys()].every((k) => k.startsWith('dc_tokens.'))).toBe(true);

    const model = samplingModel(ca.spec, ca.config, ca.ema);
    expect(model).toBeInstanceOf(CaptionSiT);
    expect((model as CaptionSiT).dc_tokens).not.toBeNull();
    expect(() => createSiT(ca.config, 0).loadStateDict(ca.ema)).toThrow(/unexpected keys/);
    const png = path.join(tmp('sample'), 'grid.png');
    sample({ checkpoint: path.join(a, 'checkpoint.safetensors'), out: png, sampler: 'euler', steps: 2, perClass: 1 });
    expect(existsSync(png)).toBe(true);
  }, 240_000);

  it('evaluation: finite metrics from the caption-conditioned SiT (stage 2 on the tiny stage-1 fixture)', () => {
    const dir = tmp('eval');
    const files = writeTestStandins(dir);
    const evalSection = { samples: 20, steps: 2, reference: 40, probe_train: 40, probe_test: 20, classifier: files.classifier, encoder: files.encoder, sfid_channels: 2, block: 2 };
    const spec = tinySpec('softrepa', { eval: evalSection });
    const data = openTrainData(spec);
    const ev = Evaluation.prepare(spec, modelConfigFor(spec, data));
    const trainer = new Trainer(spec, data);
    expect(trainer.emaModel).toBeInstanceOf(CaptionSiT);
    const r = ev.run(trainer.emaModel as never);
    for (const [k, v] of Object.entries(r)) expect(Number.isFinite(v), k).toBe(true);
  }, 120_000);
});
