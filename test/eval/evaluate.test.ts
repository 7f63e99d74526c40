// The evaluation pipeline end to end on files the test writes (a ResNet-T classifier and a tiny
// DINOv2-layout ViT with seed weights, standing in for the shipped stand-ins): every metric comes
// out finite and in range, the same model gives the same numbers twice (seeded draws), and the
// numbers move with the model (a trained and an untrained SiT differ). The metric formulas are
// validated in their own tests against closed forms and scipy/numpy fixtures.
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Evaluation } from '../../src/eval/evaluate.ts';
import { modelConfigFor, openTrainData } from '../../src/build/setup.ts';
import { Trainer } from '../../src/run/reference.ts';
import { writeTestStandins } from './standinFiles.ts';
import { tinySpec } from '../actors/specs.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'evaluate-'));
const { classifier: classifierFile, encoder: encoderFile } = writeTestStandins(dir);

const evalSection = { samples: 40, steps: 3, reference: 60, probe_train: 60, probe_test: 40, classifier: classifierFile, encoder: encoderFile, sfid_channels: 2 };

describe.each(['sit-baseline', 'reg'] as const)('Evaluation (%s)', (protocol) => {
  it('finite, in range, deterministic, and sensitive to the model', () => {
    const spec = tinySpec(protocol, { eval: evalSection, train: { ...tinySpec(protocol).train, steps: 30 } });
    const data = openTrainData(spec);
    const cfg = modelConfigFor(spec, data);
    const ev = Evaluation.prepare(spec, cfg);
    const trainer = new Trainer(spec, data);
    const before = ev.run(trainer.emaModel);
    const again = ev.run(trainer.emaModel);
    expect(again).toEqual(before);
    for (const [k, v] of Object.entries(before)) expect(Number.isFinite(v), k).toBe(true);
    expect(before.fd).toBeGreaterThanOrEqual(0);
    expect(before.sfid).toBeGreaterThanOrEqual(0);
    expect(before.is).toBeGreaterThanOrEqual(1 - 1e-9);
    for (const k of ['precision', 'recall', 'probe']) expect(before[k], k).toBeGreaterThanOrEqual(0), expect(before[k], k).toBeLessThanOrEqual(1);
    expect(Math.abs(before.cknna)).toBeLessThanOrEqual(1 + 1e-9);
    for (let i = 0; i < 30; i++) trainer.trainStep();
    const after = ev.run(trainer.model);
    expect(after.fd).not.toBe(before.fd);
    // The hidden states moved (CKNNA is continuous in them; the probe's accuracy on 40 images is
    // coarse and can land on the same count).
    expect(after.cknna).not.toBe(before.cknna);
  }, 120_000);
});

describe('Evaluation of a model trained without label dropout (no null class: EPG consistency)', () => {
  it('the probe and CKNNA read its hidden states with one fixed class instead of the null class it lacks', () => {
    const base = tinySpec('sit-baseline');
    const spec = tinySpec('sit-baseline', { eval: evalSection, model: { ...base.model, class_dropout_prob: 0 } });
    const data = openTrainData(spec);
    const cfg = modelConfigFor(spec, data);
    expect(cfg.classDropoutProb).toBe(0);
    const m = Evaluation.prepare(spec, cfg).run(new Trainer(spec, data).emaModel);
    expect(Number.isFinite(m.cknna) && Number.isFinite(m.probe)).toBe(true);
  }, 120_000);
});
