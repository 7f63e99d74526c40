// DeepFlow end to end on the tiny spec (test/actors/specs.ts TINY: 3 blocks cut after 1 and 2, K = 3):
// on actors, 6 steps equal 3 steps + a resume of 3 bit for bit (metrics with its `ds_1`, `ds_2`,
// `acc` terms and the batch's gap sign, weights, EMA, optimiser, RNG); the checkpoint holds the VeRA
// blocks and both velocity heads under official names; the final grid and `diffactor sample` draw
// with the DeepFlow SiT (v_K, every branch at t); the evaluation (FD, probe after a cut) runs on it.
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
import { DeepFlowSiT } from '../../src/methods/deepflow/model.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tinySpec } from '../actors/specs.ts';

const tmp = (what: string) => mkdtempSync(path.join(tmpdir(), `deepflow-${what}-`));
const ckpt = (out: string) => loadCheckpoint(path.join(out, 'checkpoint.safetensors'));
const metrics = (dir: string) => readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => { const { wall_s: _w, it_s: _i, ...m } = JSON.parse(l); return m; });
function same(a: Map<string, Tensor>, b: Map<string, Tensor>, what: string): void {
  expect([...b.keys()].sort(), what).toEqual([...a.keys()].sort());
  expect(a.size, what).toBeGreaterThan(0);
  for (const [k, t] of a) expect(Array.from(b.get(k)!.data), `${what} ${k}`).toEqual(Array.from(t.data));
}

describe('DeepFlow runs', () => {
  it('on actors: 6 steps == 3 steps + resume 3; VeRA blocks in the checkpoint; the grid and `sample` draw with the DeepFlow SiT', async () => {
    const spec = tinySpec('deepflow', { train: { ...tinySpec('deepflow').train, steps: 6, checkpoint_every: 3, schedule: 'constant' } });
    const a = tmp('whole');
    await runActors({ spec, out: a, placement: 'local', quiet: true });
    expect(existsSync(path.join(a, 'samples.png'))).toBe(true);
    const b = tmp('resumed');
    await runActors({ spec: { ...spec, train: { ...spec.train, steps: 3 } }, out: b, placement: 'local', quiet: true, samples: false });
    await runActors({ out: b, resume: true, steps: 6, placement: 'local', quiet: true, samples: false });
    const m = metrics(a);
    expect(metrics(b)).toEqual(m);
    expect(m).toHaveLength(6);
    for (const l of m) {
      for (const k of ['diff', 'ds_1', 'ds_2', 'acc']) expect(Number.isFinite(l[k]), `${k} at step ${l.step}`).toBe(true);
      expect([1, -1]).toContain(l.gap_sign);
    }
    const [ca, cb] = [ckpt(a), ckpt(b)];
    for (const key of ['model', 'ema', 'opt'] as const) same(ca[key], cb[key], key);
    expect(cb.state.rng).toEqual(ca.state.rng);
    const keys = [...ca.model.keys()];
    for (const k of ['df_blocks.0.acc_mlp.6.weight', 'df_blocks.1.cross_attention.multihead_attn.in_proj_weight', 'dt_embedder.mlp.0.weight', 'final_layer.0.linear.weight', 'final_layer.1.linear.weight', 'final_acc_layer.linear.weight']) {
      expect(keys, k).toContain(k);
    }

    // sampling rebuilds the backbone from the spec the checkpoint carries
    const model = samplingModel(ca.spec, ca.config, ca.ema);
    expect(model).toBeInstanceOf(DeepFlowSiT);
    expect(() => createSiT(ca.config, 0).loadStateDict(ca.ema)).toThrow(/unexpected keys/);
    const png = path.join(tmp('sample'), 'grid.png');
    sample({ checkpoint: path.join(a, 'checkpoint.safetensors'), out: png, sampler: 'euler', steps: 2, perClass: 1 });
    expect(existsSync(png)).toBe(true);
  }, 240_000);

  it('evaluation: finite metrics from the DeepFlow SiT, the probe reading h\' after the first cut', () => {
    const dir = tmp('eval');
    const files = writeTestStandins(dir);
    const evalSection = { samples: 20, steps: 2, reference: 40, probe_train: 40, probe_test: 20, classifier: files.classifier, encoder: files.encoder, sfid_channels: 2, block: 1 };
    const spec = tinySpec('deepflow', { eval: evalSection });
    const data = openTrainData(spec);
    const ev = Evaluation.prepare(spec, modelConfigFor(spec, data));
    const trainer = new Trainer(spec, data);
    expect(trainer.emaModel).toBeInstanceOf(DeepFlowSiT);
    const r = ev.run(trainer.emaModel as never);
    for (const [k, v] of Object.entries(r)) expect(Number.isFinite(v), k).toBe(true);
    for (let i = 0; i < 3; i++) trainer.trainStep();
    expect(ev.run(trainer.model as never).cknna).not.toBe(r.cknna);
  }, 120_000);
});
