// The Evaluator actor beside training: every `eval_every` steps it gets copies of the EMA weights
// and its metrics land in metrics.jsonl while the student keeps stepping; its numbers equal an
// in-process Evaluation of the same EMA weights (read back from a checkpoint at that step).
import { expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runActors } from '../../src/run/actorRun.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { backboneForWeights } from '../../src/build/parts.ts';
import { Evaluation } from '../../src/eval/evaluate.ts';
import type { SiT } from '../../src/models/sit.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tinySpec } from './specs.ts';

it('evaluates the EMA teacher every N steps beside training, like an in-process evaluation', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'evaluator-'));
  const { classifier, encoder } = writeTestStandins(dir);
  const base = tinySpec('sit-baseline');
  const spec = tinySpec('sit-baseline', {
    train: { ...base.train, steps: 10, checkpoint_every: 5, eval_every: 5 },
    eval: { samples: 30, steps: 2, reference: 40, probe_train: 40, probe_test: 30, classifier, encoder, sfid_channels: 2 },
  });
  const out = path.join(dir, 'run');
  const r = await runActors({ spec, out, quiet: true, samples: false });
  expect(r.evals.map((e) => e.step).sort((a, b) => a - b)).toEqual([5, 10]);
  const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.eval);
  expect(lines.map((l) => l.step).sort((a: number, b: number) => a - b)).toEqual([5, 10]);
  for (const l of lines) for (const k of ['fd', 'sfid', 'is', 'precision', 'recall', 'class_acc', 'class_conf', 'class_acc_real', 'cknna', 'probe', 'val_loss']) expect(Number.isFinite(l[k]), `${k} at ${l.step}`).toBe(true);
  // The final checkpoint holds the EMA of step 10: the same numbers in process.
  const c = loadCheckpoint(path.join(out, 'checkpoint.safetensors'));
  const model = backboneForWeights(c.spec, c.config, c.ema);
  model.loadStateDict(c.ema);
  const m = Evaluation.prepare(c.spec, c.config).run(model as SiT);
  const at10 = r.evals.find((e) => e.step === 10)!.metrics;
  for (const k of Object.keys(m)) expect(at10[k], k).toBe(m[k]);
}, 120_000);

it('a REG run gets its held-out loss too (the class token from the frozen encoder); REPA-E does not', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'evaluator-reg-'));
  const { classifier } = writeTestStandins(dir);
  const evalSection = { samples: 20, steps: 2, reference: 30, probe_train: 30, probe_test: 20, classifier, sfid_channels: 2 };
  for (const protocol of ['reg', 'repa-e'] as const) {
    const base = tinySpec(protocol);
    const spec = tinySpec(protocol, { train: { ...base.train, steps: 4, checkpoint_every: 4, eval_every: 4 }, eval: evalSection });
    const r = await runActors({ spec, out: path.join(dir, protocol), quiet: true, samples: false });
    const m = r.evals.find((e) => e.step === 4)!.metrics;
    expect(Number.isFinite(m.fd), `${protocol} fd`).toBe(true);
    if (protocol === 'reg') expect(m.val_loss).toBeGreaterThan(0);
    else expect(m.val_loss).toBeUndefined();
  }
}, 120_000);
