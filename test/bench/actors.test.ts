// The actor-runtime benchmark: the bench spec carries the configs' model sizes (not the REPA spec's
// own model section), the spread helper's quantiles match hand counts, and a smoke run on a tiny
// config reports the JSON fields with finite positive times on both sides and losses that
// agree (the two sides trained the same thing). No timing is asserted.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ACTOR_BENCH_CONFIGS, ACTOR_BENCH_SPEC, actorBenchSpec, benchActors, spread } from '../../src/bench/actors.ts';
import { modelConfigFor } from '../../src/build/setup.ts';
import { gridSize } from '../../src/models/config.ts';

describe('bench actors', () => {
  it('builds P1 and P2 on the REPA spec with the presets\' sizes and batches', () => {
    const raw = parseYaml(readFileSync(ACTOR_BENCH_SPEC, 'utf8'));
    const want = { P1: { hidden: 192, depth: 6, heads: 3, patch: 1, tokens: 64, batch: 64 }, P2: { hidden: 384, depth: 12, heads: 6, patch: 2, tokens: 256, batch: 16 } };
    for (const c of ACTOR_BENCH_CONFIGS) {
      const spec = actorBenchSpec(raw, c, 'builtin', 7, 'repa.yaml');
      const cfg = modelConfigFor(spec, { channels: 1, height: c.size, numClasses: 10 });
      const w = want[c.config as 'P1' | 'P2'];
      expect([cfg.hiddenSize, cfg.depth, cfg.numHeads, cfg.patchSize, gridSize(cfg) ** 2], c.config).toEqual([w.hidden, w.depth, w.heads, w.patch, w.tokens]);
      expect(spec.protocol).toBe('repa');
      expect(spec.train.batch_size).toBe(w.batch);
      expect(spec.train.steps).toBe(7);
      expect(spec.train.checkpoint_every).toBeGreaterThan(7);
    }
  });

  it('spread: median and quartiles by linear interpolation', () => {
    expect(spread([5, 1, 4, 2, 3])).toEqual({ median: 3, q1: 2, q3: 4, min: 1, max: 5 });
    expect(spread([4, 1, 2, 3])).toEqual({ median: 2.5, q1: 1.75, q3: 3.25, min: 1, max: 4 });
  });

  it('reports actor and in-process seconds per step (tiny config, 2 timed steps)', async () => {
    const r = await benchActors({ json: true, steps: 2, warmup: 1, dataset: 'builtin', configs: [{ config: 'T', preset: 'SiT-T/2', batch: 4, size: 8 }] });
    const parsed = JSON.parse(JSON.stringify(r));
    expect(parsed.dataset).toBe('builtin');
    expect(parsed.results).toHaveLength(1);
    const x = parsed.results[0];
    expect(x.config).toBe('T');
    expect(x.tokens).toBe(16);
    for (const v of [x.actor_s, x.inprocess_s, x.ratio, x.paired_ratio]) {
      expect(Number.isFinite(v)).toBe(true);
      expect(v).toBeGreaterThan(0);
    }
    expect(x.actor_times).toHaveLength(2);
    expect(x.inprocess_times).toHaveLength(2);
    expect(x.ratio).toBeCloseTo(x.actor_s / x.inprocess_s, 10);
    expect(x.loss_rel_diff).toBeLessThan(1e-5);
  }, 60_000);
});
