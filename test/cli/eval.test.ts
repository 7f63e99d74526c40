// `diffactor eval --checkpoint`: the checkpoint's EMA weights measured with the spec's evaluation
// settings equal an Evaluation run on the trainer's own EMA model; --samples and --sample-steps
// override the spec, as --set does for any spec field (the numbers move, the JSON line says what was used).
import { describe, expect, it, vi } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { evaluateCheckpoint } from '../../src/cli/eval.ts';
import { Evaluation } from '../../src/eval/evaluate.ts';
import { runTraining } from '../../src/run/run.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tinySpec } from '../actors/specs.ts';

describe('diffactor eval', () => {
  it('measures the checkpoint\'s EMA model; --samples and --sample-steps override the spec', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'eval-cli-'));
    const { classifier, encoder } = writeTestStandins(dir);
    const spec = tinySpec('sit-baseline', { eval: { samples: 20, steps: 2, reference: 30, probe_train: 30, probe_test: 20, classifier, encoder, sfid_channels: 2 } });
    const out = path.join(dir, 'run');
    const { trainer } = runTraining({ spec: { ...spec, train: { ...spec.train, steps: 4, checkpoint_every: 4 } }, out, quiet: true, samples: false });
    const want = Evaluation.prepare(trainer.spec, trainer.config).run(trainer.emaModel);
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((s: string) => { lines.push(s); });
    try {
      const file = path.join(out, 'checkpoint.safetensors');
      expect(evaluateCheckpoint({ checkpoint: file, json: true })).toEqual(want);
      const more = evaluateCheckpoint({ checkpoint: file, json: true, samples: 24, sampleSteps: 3 });
      expect(more.fd).not.toBe(want.fd);
      expect(JSON.parse(lines[1])).toMatchObject({ step: 4, samples: 24, sample_steps: 3, nfe: spec.sample.sampler === 'heun' ? 5 : 3, sampler: spec.sample.sampler });
      // --set overrides the checkpoint's spec for this measurement (here the guidance scale) and is recorded.
      const guided = evaluateCheckpoint({ checkpoint: file, json: true, set: ['eval.cfg=3'] });
      expect(guided.fd).not.toBe(want.fd);
      expect(guided.class_acc_real).toBe(want.class_acc_real);
      expect(JSON.parse(lines[2])).toMatchObject({ set: ['eval.cfg=3'], step: 4 });
      expect(() => evaluateCheckpoint({ checkpoint: file, json: true, set: ['eval.cfg=-1'] })).toThrow(/eval\.cfg/);
    } finally {
      vi.restoreAllMocks();
    }
  }, 120_000);
});
