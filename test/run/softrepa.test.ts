// SoftREPA end to end on the tiny spec (test/actors/specs.ts TINY): stage 1 (the caption-conditioned
// SiT) trains on actors; stage 2 loads that run's checkpoint (its EMA weights) as softrepa.init and,
// on actors, 6 steps equal 3 steps + a resume of 3 bit for bit (metrics with the `contrastive` term
// and `diff` logged at dweight 0, weights, EMA, optimiser, RNG); the stage-2 checkpoint holds
// dc_tokens, every other weight equal to stage 1's EMA; the final grid and `diffactor sample` draw
// with the caption-conditioned SiT; the evaluation (FD, class accuracy, probe) runs on it.
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { runActors } from '../../src/run/actorRun.ts';
import { CaptionSiT } from '../../src/methods/softrepa/model.ts';
import { TINY, tinySpec } from '../actors/specs.ts';
import { expectEvaluates, expectResumeExact, expectSamplesWith, readCheckpoint, readMetrics, tmpDir } from './methodRun.ts';

const section = TINY.softrepa.softrepa as Record<string, unknown>;

describe('SoftREPA runs', () => {
  it('stage 1 then stage 2 on actors: 6 steps == 3 + resume 3; only dc_tokens differs from stage 1; the grid and `sample` draw', async () => {
    const base = tinySpec('softrepa');
    const pre = tinySpec('softrepa', { softrepa: { ...section, stage: 'pretrain', init: null }, train: { ...base.train, steps: 4, checkpoint_every: 4 } });
    const p = tmpDir('softrepa', 'pretrain');
    await runActors({ spec: pre, out: p, placement: 'local', quiet: true, samples: false });
    const c1 = readCheckpoint(p);
    expect(c1.model.has('dc_tokens')).toBe(false);
    expect(readMetrics(p).every((l) => Number.isFinite(l.diff) && l.contrastive === undefined)).toBe(true);

    const spec = tinySpec('softrepa', { softrepa: { ...section, init: path.join(p, 'checkpoint.safetensors') } });
    const { dir, metrics: m, checkpoint: ca } = await expectResumeExact('softrepa', spec, ['diff', 'contrastive']);
    // dweight 0: the loss is the contrastive term alone
    for (const l of m) expect(l.loss).toBeCloseTo(l.contrastive, 6);
    for (const [k, t] of ca.ema) {
      if (k === 'dc_tokens') continue;
      expect(Array.from(t.data), `stage-2 weight ${k} is stage 1's EMA`).toEqual(Array.from(c1.ema.get(k)!.data));
    }
    expect([...ca.opt.keys()].every((k) => k.startsWith('dc_tokens.'))).toBe(true);
    const model = expectSamplesWith('softrepa', dir, CaptionSiT);
    expect((model as CaptionSiT).dc_tokens).not.toBeNull();
  }, 240_000);

  it('evaluation: finite metrics from the caption-conditioned SiT (stage 2 on the tiny stage-1 fixture)', () => {
    expectEvaluates('softrepa', CaptionSiT, { block: 2 });
  }, 120_000);
});
