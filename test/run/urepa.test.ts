// U-REPA end to end on the tiny spec (test/actors/specs.ts TINY): on actors, 6 steps equal 3 steps
// + a resume of 3 bit for bit (metrics with its `proj` and `manifold` terms, weights, EMA, heads,
// optimiser, RNG); the checkpoint holds the U-shaped SiT (its skips) under official names; the
// final grid and `diffactor sample` draw with the U-shaped SiT (a plain SiT cannot load the
// weights); the evaluation (FD, probe on the hidden state of a middle block) runs on it.
import { describe, expect, it } from 'vitest';
import { USiT } from '../../src/methods/u-repa/model.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectEvaluates, expectResumeExact, expectSamplesWith } from './methodRun.ts';

describe('U-REPA runs', () => {
  it('on actors: 6 steps == 3 steps + resume 3; skips in the checkpoint; the grid and `sample` draw with the U-shaped SiT', async () => {
    const { dir, checkpoint: ca } = await expectResumeExact('u-repa', tinySpec('u-repa'), ['diff', 'proj', 'manifold'], ['model', 'ema', 'proj', 'opt']);
    expect([...ca.model.keys()].filter((k) => k.startsWith('skips.')).sort()).toEqual(['skips.0.bias', 'skips.0.weight']);
    expect([...ca.proj.keys()].every((k) => k.startsWith('projectors.0.'))).toBe(true);
    expectSamplesWith('u-repa', dir, USiT, /unexpected keys: skips/);
  }, 240_000);

  it('evaluation: finite metrics from the U-shaped SiT, the probe reading a middle block on its 2×2 grid', () => {
    expectEvaluates('u-repa', USiT, { block: 2, moves: true });
  }, 120_000);
});
