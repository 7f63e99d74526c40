// Methods whose model is not a diffactor velocity/ε model under the evaluator, as `diffactor compare`
// runs them (train.eval_every on actors): DiGIT's GPT (not probeable, no velocity forward) gets the
// sample metrics only — no CKNNA, probe or held-out loss; EPG's stage 2 (its own VE forward, probed
// through hiddenAfter) gets the sample metrics, CKNNA and the probe, and no held-out velocity loss. A
// velocity model (the SiT baseline) keeps all of them.
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { runActors } from '../../src/run/actorRun.ts';
import { tinySpec } from '../actors/specs.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tmpDir } from './methodRun.ts';

const SAMPLE_METRICS = ['fd', 'sfid', 'is', 'precision', 'recall', 'class_acc'];

async function evalLine(method: string): Promise<Record<string, number>> {
  const dir = tmpDir(method, 'own-forward-eval');
  const files = writeTestStandins(dir);
  const s = tinySpec(method, { eval: { samples: 20, steps: 2, reference: 40, probe_train: 40, probe_test: 20, classifier: files.classifier, encoder: files.encoder, sfid_channels: 2, block: 1 } });
  await runActors({ spec: { ...s, train: { ...s.train, steps: 2, checkpoint_every: 2, eval_every: 2 } }, out: path.join(dir, 'run'), quiet: true, samples: false });
  const lines = readFileSync(path.join(dir, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const e = lines.find((l) => l.eval);
  expect(e, `${method}: an evaluation line`).toBeDefined();
  for (const k of SAMPLE_METRICS) expect(Number.isFinite(e[k]), `${method} ${k}`).toBe(true);
  return e;
}

describe('the evaluator on models with their own forward', () => {
  it('DiGIT: sample metrics only; EPG: no held-out velocity loss; the SiT baseline: everything', async () => {
    const digit = await evalLine('digit');
    for (const k of ['cknna', 'probe', 'val_loss']) expect(digit[k], `digit ${k}`).toBeUndefined();
    const epg = await evalLine('epg');
    expect(epg.val_loss).toBeUndefined();
    for (const k of ['cknna', 'probe']) expect(Number.isFinite(epg[k]), `epg ${k}`).toBe(true);
    const sit = await evalLine('sit-baseline');
    for (const k of ['cknna', 'probe', 'val_loss']) expect(Number.isFinite(sit[k]), `sit ${k}`).toBe(true);
  }, 300_000);
});
