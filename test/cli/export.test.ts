// `diffactor export` (issue 19): a weights-only file (EMA unless --raw, a joint VAE's weights too)
// that sample, eval and predict read exactly like the training checkpoint it came from; --resume
// refuses it in one line; it is about a quarter of the checkpoint (weights + EMA + two AdamW
// moments → one set of weights). A flag asking for the weights it does not hold is refused by name.
import { describe, expect, it, vi } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportCli } from '../../src/cli/export.ts';
import { sample } from '../../src/cli/sample.ts';
import { predict } from '../../src/cli/predict.ts';
import { evaluateCheckpoint } from '../../src/cli/eval.ts';
import { inspectFile } from '../../src/cli/inspect.ts';
import { loadCheckpoint, WEIGHTS_FORMAT } from '../../src/build/checkpoint.ts';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../src/io/safetensors.ts';
import { runTraining } from '../../src/run/run.ts';
import { runActors } from '../../src/run/actorRun.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { fromData, type Tensor } from '../../src/tensor/tensor.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tinySpec } from '../actors/specs.ts';
import { untrainedCheckpoint } from './checkpoints.ts';

const values = (m: Map<string, Tensor>) => new Map([...m].map(([k, t]) => [k, Array.from(t.data)]));

/** Run `f` with stderr silenced (the commands report what they wrote). */
function quietly<T>(f: () => T): T {
  const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
  try {
    return f();
  } finally {
    spy.mockRestore();
  }
}

describe('diffactor export', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'export-cli-'));
  const { classifier, encoder } = writeTestStandins(dir);
  const base = tinySpec('sit-baseline');
  const spec = tinySpec('sit-baseline', {
    train: { ...base.train, steps: 4, checkpoint_every: 4 },
    eval: { samples: 20, steps: 2, reference: 30, probe_train: 30, probe_test: 20, classifier, encoder, sfid_channels: 2 },
  });
  const run = path.join(dir, 'run');
  runTraining({ spec, out: run, quiet: true, samples: false });
  const ckpt = path.join(run, 'checkpoint.safetensors');
  const ema = path.join(dir, 'ema.safetensors'), raw = path.join(dir, 'raw.safetensors');
  quietly(() => { exportCli({ checkpoint: ckpt, out: ema }); exportCli({ checkpoint: ckpt, out: raw, raw: true }); });
  const c = loadCheckpoint(ckpt);
  const f = (n: string) => path.join(dir, n);

  it('holds one set of weights (EMA by default, raw with --raw), the config and spec, nothing to resume from', () => {
    expect(values(c.ema)).not.toEqual(values(c.model)); // trained: the two differ, so the test can tell them apart
    const e = loadCheckpoint(ema), r = loadCheckpoint(raw);
    expect(e.exported).toBe('ema');
    expect(r.exported).toBe('raw');
    expect(values(e.model)).toEqual(values(c.ema));
    expect(values(r.model)).toEqual(values(c.model));
    expect(e.config).toEqual(c.config);
    expect(e.spec).toEqual(c.spec);
    expect(e.state.step).toBe(4);
    const h = readSafetensorsHeader(ema);
    expect(h.metadata.format).toBe(WEIGHTS_FORMAT);
    expect(h.entries.map((x) => x.name).filter((k) => /^(ema|opt|proj)\./.test(k))).toEqual([]);
  });

  it('is about a quarter of the checkpoint: the EMA group of the checkpoint, byte for byte, and no optimiser state', () => {
    const ratio = statSync(ema).size / statSync(ckpt).size;
    expect(ratio).toBeGreaterThan(0.22);
    expect(ratio).toBeLessThan(0.28);
    const ig = inspectFile(ckpt).groups, eg = inspectFile(ema).groups;
    expect(eg.map((g) => g.group)).toEqual(['(no prefix)', '(header)']);
    expect(eg[0].bytes).toBe(ig.find((g) => g.group === 'ema.')!.bytes);
  });

  it('sample draws the same grid from the export as from the checkpoint (EMA, and raw with --raw)', () => {
    quietly(() => {
      sample({ checkpoint: ckpt, out: f('c-ema.png'), steps: 2, perClass: 1 });
      sample({ checkpoint: ema, out: f('e-ema.png'), steps: 2, perClass: 1 });
      sample({ checkpoint: ckpt, out: f('c-raw.png'), steps: 2, perClass: 1, raw: true });
      sample({ checkpoint: raw, out: f('r-raw.png'), steps: 2, perClass: 1 });
    });
    expect(readFileSync(f('e-ema.png'))).toEqual(readFileSync(f('c-ema.png')));
    expect(readFileSync(f('r-raw.png'))).toEqual(readFileSync(f('c-raw.png')));
    expect(readFileSync(f('c-raw.png'))).not.toEqual(readFileSync(f('c-ema.png')));
    expect(() => sample({ checkpoint: ema, out: f('x.png'), raw: true }))
      .toThrow(/^--raw: \S+ema\.safetensors is a weights-only export holding the EMA weights; use the training checkpoint, or export the raw weights \(diffactor export --raw\)$/);
  });

  it('predict gives the same outputs from the export as from the checkpoint with the same weights', () => {
    const { inChannels: C, inputSize: S } = c.config;
    const inputs = f('in.safetensors');
    writeSafetensors(inputs, new Map([['x', new Rng(4).normal([2, C, S, S])], ['t', fromData(new Float32Array([0.2, 0.9]), [2])], ['y', fromData(new Float32Array([0, 3]), [2])]]));
    const out = (n: string) => Array.from(readSafetensors(f(n)).tensors.get('out')!.data);
    quietly(() => {
      predict({ checkpoint: ckpt, inputs, out: f('p-c-ema.safetensors'), ema: true });
      predict({ checkpoint: ema, inputs, out: f('p-e.safetensors') });
      predict({ checkpoint: ckpt, inputs, out: f('p-c-raw.safetensors') });
      predict({ checkpoint: raw, inputs, out: f('p-r.safetensors') });
    });
    expect(out('p-e.safetensors')).toEqual(out('p-c-ema.safetensors'));
    expect(out('p-r.safetensors')).toEqual(out('p-c-raw.safetensors'));
    expect(readSafetensorsHeader(f('p-e.safetensors')).metadata.weights).toBe('ema');
    expect(() => predict({ checkpoint: raw, inputs, out: f('p-x.safetensors'), ema: true })).toThrow(/^--ema: \S+raw\.safetensors is a weights-only export holding the raw weights/);
  });

  it('eval measures the export like the checkpoint', () => {
    const spy = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(evaluateCheckpoint({ checkpoint: ema, json: true })).toEqual(evaluateCheckpoint({ checkpoint: ckpt, json: true }));
    } finally {
      spy.mockRestore();
    }
  }, 120_000);

  it('--resume refuses it on both engines, in one line', async () => {
    const out = f('resume-export');
    mkdirSync(out);
    copyFileSync(ema, path.join(out, 'checkpoint.safetensors'));
    const msg = /^--resume \S+resume-export: checkpoint\.safetensors is a weights-only export \(diffactor export: no optimiser, RNG or data state\); resuming needs a training checkpoint$/;
    expect(() => runTraining({ out, resume: true, steps: 8, quiet: true, samples: false })).toThrow(msg);
    await expect(runActors({ out, resume: true, steps: 8, quiet: true, samples: false, placement: 'local' })).rejects.toThrow(msg);
  });

  it('refuses to overwrite its input, and --raw from an EMA export', () => {
    expect(() => exportCli({ checkpoint: ckpt, out: ckpt })).toThrow(/^--out \S+: that is the checkpoint being exported; name another file$/);
    expect(() => exportCli({ checkpoint: ema, out: f('again.safetensors'), raw: true })).toThrow(/holds only the EMA weights; export the training checkpoint for the raw ones/);
  });

  it('carries a joint VAE (REPA-E): the export decodes its latents as the checkpoint does', () => {
    const { file, c: rc } = untrainedCheckpoint(dir, 'repa-e');
    const out = f('repae-ema.safetensors');
    quietly(() => exportCli({ checkpoint: file, out }));
    const e = loadCheckpoint(out);
    expect(values(e.vae!)).toEqual(values(rc.vae!));
    quietly(() => {
      sample({ checkpoint: file, out: f('repae-c.png'), steps: 1, perClass: 1 });
      sample({ checkpoint: out, out: f('repae-e.png'), steps: 1, perClass: 1 });
    });
    expect(readFileSync(f('repae-e.png'))).toEqual(readFileSync(f('repae-c.png')));
  }, 60_000);
});

describe('diffactor inspect', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'inspect-cli-'));
  const sum = (file: string) => inspectFile(file).groups.reduce((a, g) => a + g.bytes, 0);

  it('names the groups of a checkpoint with sizes that add up to the file size (float32: 4 bytes a value)', () => {
    for (const protocol of ['sit-baseline', 'repa-e'] as const) {
      const { file, c } = untrainedCheckpoint(dir, protocol);
      const r = inspectFile(file);
      expect(sum(file)).toBe(statSync(file).size);
      expect(r.bytes).toBe(statSync(file).size);
      for (const g of r.groups.filter((x) => x.group !== '(header)')) expect(g.bytes).toBe(4 * g.values);
      const by = new Map(r.groups.map((g) => [g.group, g]));
      const n = [...c.model.values()].reduce((a, t) => a + t.size, 0);
      expect(by.get('(no prefix)')!.values).toBe(n);
      expect(by.get('ema.')!.values).toBe(n);
      expect(by.get('ema.')!.tensors).toBe(c.ema.size);
      if (protocol === 'repa-e') expect(by.get('vae.')!.values).toBe([...c.vae!.values()].reduce((a, t) => a + t.size, 0));
      expect(r).toMatchObject({ format: 'diffactor-checkpoint/1', step: 0, spec: `tiny-${protocol}` });
    }
  });

  it('a trained checkpoint: weights, EMA, AdamW moments (about twice the weights) and the header', () => {
    const out = path.join(dir, 'run');
    const base = tinySpec('sit-baseline');
    runTraining({ spec: tinySpec('sit-baseline', { train: { ...base.train, steps: 2, checkpoint_every: 2 } }), out, quiet: true, samples: false });
    const file = path.join(out, 'checkpoint.safetensors');
    const r = inspectFile(file);
    expect(r.groups.map((g) => g.group)).toEqual(['(no prefix)', 'ema.', 'opt.', '(header)']);
    expect(sum(file)).toBe(statSync(file).size);
    const [w, , opt] = r.groups;
    expect(opt.values).toBeGreaterThan(1.9 * w.values);
    expect(opt.values).toBeLessThanOrEqual(2 * w.values + opt.tensors);
    expect(r.step).toBe(2);
  });

  it('any safetensors file: no format, one group, still adding up', () => {
    const file = path.join(dir, 'plain.safetensors');
    writeSafetensors(file, new Map([['a', new Rng(1).normal([3, 5])], ['b.c', new Rng(2).normal([7])]]));
    const r = inspectFile(file);
    expect(r.format).toBeNull();
    expect(r.groups.map((g) => [g.group, g.tensors, g.values])).toEqual([['(no prefix)', 2, 22], ['(header)', 0, 0]]);
    expect(sum(file)).toBe(statSync(file).size);
  });
});
