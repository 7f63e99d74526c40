// The memory benchmark: the slope and growth arithmetic against hand counts, and a smoke run on a
// tiny config in both precisions that samples RSS at the steps asked for. No memory bound is
// asserted (a measurement, not a test of the runtime's memory).
import { describe, expect, it } from 'vitest';
import { benchMemory, slope, summarise } from '../../src/bench/memory.ts';

describe('bench memory', () => {
  it('slope by least squares; growth from the start step to the last sample', () => {
    expect(slope([0, 1, 2, 3], [1, 3, 5, 7])).toBeCloseTo(2, 12);
    expect(slope([5], [1])).toBe(0);
    const s = [10, 20, 30, 40].map((step, i) => ({ step, rss_mb: [900, 1000, 1010, 1050][i], heap_used_mb: 0, array_buffers_mb: 0 }));
    const r = summarise(s, 20);
    expect(r.rss_start_mb).toBe(1000);
    expect(r.rss_end_mb).toBe(1050);
    expect(r.rss_peak_mb).toBe(1050);
    expect(r.growth_pct).toBeCloseTo(5, 12);
    expect(r.slope_mb_per_1000_steps).toBeCloseTo(2500, 9); // 50 MB over 20 steps, least squares of 1000, 1010, 1050
    expect(() => summarise(s, 40)).toThrow(/fewer than two samples from step 40 on/);
  });

  it('samples RSS over an actor run in fp32 and bf16 (tiny config)', async () => {
    const r = await benchMemory({ json: true, steps: 6, every: 2, start: 2, dataset: 'builtin', configs: [{ config: 'T', preset: 'SiT-T/2', batch: 4, size: 8 }] });
    expect(r.results.map((x) => x.precision)).toEqual(['fp32', 'bf16']);
    for (const x of r.results) {
      expect(x.samples.map((s) => s.step)).toEqual([2, 4, 6]);
      expect(x.samples.every((s) => s.rss_mb > 10)).toBe(true);
      expect(Number.isFinite(x.growth_pct)).toBe(true);
    }
  }, 120_000);
});
