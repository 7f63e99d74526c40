import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseSpec } from '../../src/spec/load.ts';
import { runTraining } from '../../src/run/run.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { Trainer, NonFiniteLossError } from '../../src/run/reference.ts';
import { openTrainData } from '../../src/build/setup.ts';

// A model small enough that a step takes milliseconds: 2 blocks of width 32 on 16×16 shapes.
const tiny = (over: Record<string, unknown> = {}) => parseSpec({
  name: 'tiny',
  seed: 3,
  data: { dataset: 'builtin', size: 16, builtin_count: 64 },
  model: { preset: 'SiT-S/4', hidden_size: 32, depth: 2, num_heads: 2 },
  train: { steps: 6, batch_size: 8, lr: 1e-3, checkpoint_every: 3, log_every: 1, warmup_steps: 2, schedule: 'cosine' },
  sample: { sampler: 'euler', steps: 2, per_class: 1 },
  ...over,
});

const dir = () => mkdtempSync(path.join(tmpdir(), 'train-'));
const strip = (l: string) => { const o = JSON.parse(l); delete o.wall_s; delete o.it_s; return o; };
const metrics = (d: string) => readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map(strip);

describe('reference trainer', () => {
  it('resume continues to exactly the numbers of an uninterrupted run', () => {
    const a = dir(), b = dir();
    const full = runTraining({ spec: tiny(), out: a, quiet: true, samples: false });
    runTraining({ spec: tiny(), out: b, steps: 3, quiet: true, samples: false });
    const resumed = runTraining({ out: b, steps: 6, resume: true, quiet: true, samples: false });
    expect(resumed.trainer.step).toBe(6);
    expect(metrics(b)).toEqual(metrics(a));
    const wa = full.trainer.model.stateDict(), wb = resumed.trainer.model.stateDict();
    for (const [k, t] of wa) expect(Array.from(wb.get(k)!.data), k).toEqual(Array.from(t.data));
    const ea = full.trainer.emaModel.stateDict(), eb = resumed.trainer.emaModel.stateDict();
    for (const [k, t] of ea) expect(Array.from(eb.get(k)!.data), `ema ${k}`).toEqual(Array.from(t.data));
  });

  it('the loss falls on the built-in set', () => {
    const r = runTraining({ spec: tiny({ train: { steps: 40, batch_size: 16, lr: 3e-3, log_every: 1, checkpoint_every: 100 } }), out: dir(), quiet: true, samples: false });
    const first = r.logs.slice(0, 5).reduce((s, l) => s + l.loss, 0) / 5;
    const last = r.logs.slice(-5).reduce((s, l) => s + l.loss, 0) / 5;
    expect(last).toBeLessThan(0.8 * first);
  });

  it('checkpoint: official names unprefixed, everything else prefixed, config in metadata', () => {
    const d = dir();
    runTraining({ spec: tiny({ train: { steps: 1, batch_size: 8 } }), out: d, quiet: true, samples: false });
    const c = loadCheckpoint(path.join(d, 'checkpoint.safetensors'));
    expect([...c.model.keys()]).toContain('blocks.1.adaLN_modulation.1.weight');
    expect([...c.model.keys()]).toContain('pos_embed');
    expect([...c.model.keys()].every((k) => !/^(ema|opt)\./.test(k))).toBe(true);
    expect([...c.ema.keys()].sort()).toEqual([...c.model.keys()].sort());
    expect([...c.opt.keys()]).toContain('final_layer.linear.weight.exp_avg');
    expect(c.config).toMatchObject({ family: 'SiT', inputSize: 16, inChannels: 3, patchSize: 4, hiddenSize: 32, depth: 2, numHeads: 2, numClasses: 10, learnSigma: false });
    expect(c.state.step).toBe(1);
  });

  it('a NaN loss stops the run with its step; the last checkpoint stays intact', () => {
    const d = dir();
    // lr 1e12 wrecks the weights at the first update; checkpoint_every 1 saves step 1 before it shows.
    const spec = tiny({ train: { steps: 10, batch_size: 8, lr: 1e12, checkpoint_every: 1, warmup_steps: 0, grad_clip: 1e30 } });
    let err: unknown;
    try { runTraining({ spec, out: d, quiet: true, samples: false }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(NonFiniteLossError);
    const e = err as NonFiniteLossError;
    expect(e.message).toMatch(/(loss became (NaN|-?Infinity)|training diverged) at step \d+.*no checkpoint was written over/);
    const c = loadCheckpoint(path.join(d, 'checkpoint.safetensors'));
    expect(c.state.step).toBeLessThan(e.step);
    for (const [k, t] of c.model) expect(t.toArray().filter((v) => !Number.isFinite(v)).length, k).toBe(0);
  });

  it('refuses to start over a directory that holds a run', () => {
    const d = dir();
    runTraining({ spec: tiny({ train: { steps: 1, batch_size: 8 } }), out: d, quiet: true, samples: false });
    const before = createHash('sha256').update(readFileSync(path.join(d, 'checkpoint.safetensors'))).digest('hex');
    expect(() => runTraining({ spec: tiny(), out: d, quiet: true })).toThrow(/already holds a run.*--resume/);
    expect(createHash('sha256').update(readFileSync(path.join(d, 'checkpoint.safetensors'))).digest('hex')).toBe(before);
  });

  it('DiT baseline trains with the hybrid loss and logs its terms', () => {
    const spec = tiny({ protocol: 'dit-baseline', diffusion: { objective: 'ddpm' }, sample: { sampler: 'ddim', steps: 2, per_class: 1 }, train: { steps: 2, batch_size: 8 } });
    const t = new Trainer(spec, openTrainData(spec));
    expect(t.config.learnSigma).toBe(true);
    const log = t.trainStep();
    expect(Number.isFinite(log.terms.mse) && Number.isFinite(log.terms.vb)).toBe(true);
  });

  it('writes a sample grid at the end', () => {
    const d = dir();
    runTraining({ spec: tiny({ train: { steps: 1, batch_size: 8 } }), out: d, quiet: true });
    expect(existsSync(path.join(d, 'samples.png'))).toBe(true);
  });
});

describe('EMA warm-up', () => {
  it('uses decay min(d, (1+k)/(10+k)) at step k when enabled, and stays exact on resume', () => {
    const spec = tiny({ train: { steps: 3, batch_size: 8, lr: 1e-2, warmup_steps: 0, ema_decay: 0.999, ema_warmup: true } });
    const t = new Trainer(spec, openTrainData(spec));
    // Independent recurrence on one parameter: e_k = d_k e_{k-1} + (1 - d_k) p_k, e_0 = p_0.
    const name = 'final_layer.linear.bias';
    const p = () => Float64Array.from(new Map(t.model.namedParameters()).get(name)!.data);
    let e = p();
    for (let k = 0; k < 3; k++) {
      t.trainStep();
      const dk = Math.min(0.999, (1 + k) / (10 + k));
      const pk = p();
      e = e.map((v, i) => dk * v + (1 - dk) * pk[i]);
    }
    const got = new Map(t.emaModel.namedParameters()).get(name)!.data;
    for (let i = 0; i < e.length; i++) expect(Math.abs(got[i] - e[i])).toBeLessThan(1e-6);
  });
});
