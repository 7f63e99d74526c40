// When `compare` may reuse a finished run: the same spec and the same bytes in every file the
// spec reads (a retrained stand-in keeps its name). Runs from before inputs.json are checked on
// their spec.yaml.
import { describe, expect, it } from 'vitest';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { runInputs, staleReasons, uncheckedFiles, writeRunInputs } from '../../src/study/runInputs.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tinySpec } from '../actors/specs.ts';

function setup() {
  const dir = mkdtempSync(path.join(tmpdir(), 'inputs-'));
  const { classifier, encoder } = writeTestStandins(dir);
  const spec = tinySpec('repa', { encoder: { preset: 'ViT-T/4', checkpoint: encoder }, eval: { classifier } });
  const evaluating = { ...spec, train: { ...spec.train, eval_every: 5 } };
  const run = path.join(dir, 'run');
  mkdirSync(run);
  return { dir, classifier, encoder, spec: evaluating, run };
}

describe('staleReasons', () => {
  it('nothing when spec and files are unchanged; names the field or file that changed', () => {
    const { encoder, spec, run } = setup();
    const rec = runInputs(spec);
    expect(rec.files).toEqual({ 'encoder.checkpoint': expect.any(String), 'eval.classifier': expect.any(String), 'eval.encoder': expect.any(String) });
    expect(rec.files['eval.encoder']).toBe(rec.files['encoder.checkpoint']); // CKNNA's encoder defaults to the run's
    writeRunInputs(run, rec);
    expect(staleReasons(run, runInputs(spec))).toEqual([]);
    expect(staleReasons(run, runInputs({ ...spec, eval: { ...spec.eval, samples: 7 } }))).toEqual(['spec field eval.samples differs']);
    expect(staleReasons(run, runInputs({ ...spec, eval: { ...spec.eval, nfe: 40 } }))).toEqual(['spec field eval.nfe differs']);
    expect(staleReasons(run, runInputs(spec, 'builtin'))).toEqual(['--data was unset, now builtin']);
    appendFileSync(encoder, Buffer.from([0])); // same name, other bytes: a retrained stand-in
    expect(staleReasons(run, runInputs(spec))).toEqual(['the encoder.checkpoint file changed since the run', 'the eval.encoder file changed since the run']);
  });

  it('a run made in another clone (same bytes at another path) is the same input; other bytes at the same path are not', () => {
    const { dir, encoder, spec, run } = setup();
    writeRunInputs(run, runInputs(spec));
    const moved = path.join(dir, 'elsewhere.safetensors');
    copyFileSync(encoder, moved);
    const there = { ...spec, encoder: { ...spec.encoder!, checkpoint: moved } };
    expect(staleReasons(run, runInputs(there))).toEqual([]);
    appendFileSync(moved, Buffer.from([0])); // CKNNA's encoder defaults to the run's: both roles change
    expect(staleReasons(run, runInputs(there))).toEqual(['the encoder.checkpoint file changed since the run', 'the eval.encoder file changed since the run']);
  });

  it('a file the run read that is not on this machine is unchecked, not a difference (a study restored from its archive)', () => {
    const { dir, encoder, spec, run } = setup();
    writeRunInputs(run, runInputs(spec));
    expect(uncheckedFiles(run, runInputs(spec))).toEqual([]);
    const away = path.join(dir, 'away.safetensors');
    copyFileSync(encoder, away);
    rmSync(encoder);
    expect(staleReasons(run, runInputs(spec))).toEqual([]);
    expect(uncheckedFiles(run, runInputs(spec))).toEqual(['encoder.checkpoint', 'eval.encoder']);
    // Back with other bytes: compared again, and a difference.
    copyFileSync(away, encoder);
    appendFileSync(encoder, Buffer.from([0]));
    expect(staleReasons(run, runInputs(spec))).toEqual(['the encoder.checkpoint file changed since the run', 'the eval.encoder file changed since the run']);
    expect(uncheckedFiles(run, runInputs(spec))).toEqual([]);
  });

  it('a file no longer read, or newly read, is a difference too', () => {
    const { spec, run } = setup();
    writeRunInputs(run, runInputs(spec));
    const noEval = { ...spec, train: { ...spec.train, eval_every: 0 } };
    expect(staleReasons(run, runInputs(noEval))).toEqual(['spec field train.eval_every differs', 'no eval.classifier file is read any more', 'no eval.encoder file is read any more']);
  });

  it('a run from before inputs.json is checked on its spec.yaml', () => {
    const { spec, run } = setup();
    writeRunInputs(run, runInputs(spec));
    rmSync(path.join(run, 'inputs.json'));
    expect(staleReasons(run, runInputs(spec))).toEqual(['neither inputs.json nor spec.yaml is there']);
    writeFileSync(path.join(run, 'spec.yaml'), stringify(spec));
    expect(staleReasons(run, runInputs(spec))).toEqual([]);
    expect(staleReasons(run, runInputs({ ...spec, seed: 99 }))).toEqual(['spec field seed differs']);
  });
});

describe('stored specs through the current schema', () => {
  it('a field added since (absent from the record) takes its default and is no difference', () => {
    const { spec, run } = setup();
    const rec = runInputs(spec);
    // As an older version wrote it: without eval.sfid_channels (its default is 7).
    const old = { ...rec, spec: { ...rec.spec, eval: Object.fromEntries(Object.entries(rec.spec.eval).filter(([k]) => k !== 'sfid_channels')) } };
    writeFileSync(path.join(run, 'inputs.json'), JSON.stringify(old));
    expect(staleReasons(run, runInputs({ ...spec, eval: { ...spec.eval, sfid_channels: 7 } }))).toEqual([]);
    expect(staleReasons(run, runInputs({ ...spec, eval: { ...spec.eval, sfid_channels: 3 } }))).toEqual(['spec field eval.sfid_channels differs']);
  });

  it('a record keyed by path (before roles) is compared on its files\' contents', () => {
    const { encoder, classifier, spec, run } = setup();
    const rec = runInputs(spec);
    const byPath = { [encoder]: rec.files['encoder.checkpoint'], [classifier]: rec.files['eval.classifier'] };
    writeFileSync(path.join(run, 'inputs.json'), JSON.stringify({ ...rec, files: byPath }));
    expect(staleReasons(run, runInputs(spec))).toEqual([]);
    appendFileSync(classifier, Buffer.from([0]));
    expect(staleReasons(run, runInputs(spec))).toEqual(['the files it read changed since the run']);
  });

  it('a stored spec the schema no longer accepts is named as such', () => {
    const { spec, run } = setup();
    const rec = runInputs(spec);
    writeFileSync(path.join(run, 'inputs.json'), JSON.stringify({ ...rec, spec: { ...rec.spec, train: { ...rec.spec.train, retired_option: 1 } } }));
    expect(staleReasons(run, rec)[0]).toMatch(/^its spec is no longer valid: .*unknown field\(s\) retired_option/s);
  });
});
