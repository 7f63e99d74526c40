// When `compare` may reuse a finished run: the same spec and the same bytes in every file the
// spec reads (a retrained stand-in keeps its name). Runs from before inputs.json are checked on
// their spec.yaml.
import { describe, expect, it } from 'vitest';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { runInputs, staleReasons, writeRunInputs } from '../../src/study/runInputs.ts';
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
    const { classifier, encoder, spec, run } = setup();
    const rec = runInputs(spec);
    expect(Object.keys(rec.files).sort()).toEqual([classifier, encoder].sort()); // the encoder once, though read twice
    writeRunInputs(run, rec);
    expect(staleReasons(run, runInputs(spec))).toEqual([]);
    expect(staleReasons(run, runInputs({ ...spec, eval: { ...spec.eval, samples: 7 } }))).toEqual(['spec field eval.samples differs']);
    expect(staleReasons(run, runInputs({ ...spec, eval: { ...spec.eval, nfe: 40 } }))).toEqual(['spec field eval.nfe differs']);
    expect(staleReasons(run, runInputs(spec, 'builtin'))).toEqual(['--data was unset, now builtin']);
    appendFileSync(encoder, Buffer.from([0])); // same name, other bytes: a retrained stand-in
    expect(staleReasons(run, runInputs(spec))).toEqual([`file ${encoder} changed since the run`]);
  });

  it('a file no longer read, or newly read, is a difference too', () => {
    const { classifier, spec, run } = setup();
    writeRunInputs(run, runInputs(spec));
    const noEval = { ...spec, train: { ...spec.train, eval_every: 0 } };
    expect(staleReasons(run, runInputs(noEval))).toEqual(['spec field train.eval_every differs', `file ${classifier} is no longer read`]);
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
