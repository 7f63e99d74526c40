// Steps-to-quality (src/study/speedup.ts): the crossing of an FD curve with the baseline's final FD,
// interpolated between evaluations, against hand-computed values and as properties of any curve.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { firstCrossing, speedupMarkdown, stepsToQuality } from '../../src/study/speedup.ts';
import type { RunRecord } from '../../src/study/compare.ts';

const ev = (step: number, fd: number, wall_s = step * 2) => ({ step, wall_s, metrics: { fd } });
const run = (method: string, seed: number, fds: number[], every = 200): RunRecord => ({
  method, protocol: method, seed, dir: '', steps: fds.length * every, wallSeconds: fds.length * every * 2, losses: [],
  evals: fds.map((fd, i) => ev((i + 1) * every, fd)),
});

describe('firstCrossing', () => {
  it('interpolates step and wall time linearly between the evaluations around the target', () => {
    // FD 30 at 200, 20 at 400: 25 is crossed half-way, at step 300, 600 s.
    expect(firstCrossing([ev(200, 30), ev(400, 20), ev(600, 10)], 25)).toEqual({ step: 300, wall_s: 600, atFirst: false });
    // Exactly on an evaluation: that evaluation.
    expect(firstCrossing([ev(200, 30), ev(400, 20)], 20)).toEqual({ step: 400, wall_s: 800, atFirst: false });
    // Already below at the first evaluation: flagged, since the crossing happened before it.
    expect(firstCrossing([ev(200, 10), ev(400, 5)], 20)).toEqual({ step: 200, wall_s: 400, atFirst: true });
    // Never, and a non-finite FD skipped.
    expect(firstCrossing([ev(200, 30), ev(400, 21)], 20)).toBeNull();
    expect(firstCrossing([ev(200, 30), ev(400, NaN), ev(600, 10)], 20)).toEqual({ step: 200 + 400 * 0.5, wall_s: 800, atFirst: false });
  });

  it('properties: the crossing lies between the two evaluations around it, no evaluation before it meets the target, and a lower target is never reached earlier', () => {
    const curve = fc.array(fc.double({ min: 1, max: 100, noNaN: true }), { minLength: 1, maxLength: 8 });
    fc.assert(fc.property(curve, fc.double({ min: 1, max: 100, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (fds, target, shrink) => {
      const evals = fds.map((fd, i) => ev((i + 1) * 100, fd));
      const c = firstCrossing(evals, target);
      const firstAt = evals.findIndex((e) => e.metrics.fd <= target);
      if (firstAt < 0) return c === null;
      if (!c) return false;
      const hi = evals[firstAt].step, lo = firstAt === 0 ? hi : evals[firstAt - 1].step;
      if (!(c.step > lo - 1e-9 || firstAt === 0) || c.step > hi + 1e-9) return false;
      if (c.atFirst !== (firstAt === 0)) return false;
      // wall time is 2 s per step here, so it must follow the step exactly.
      if (Math.abs(c.wall_s - 2 * c.step) > 1e-6) return false;
      const lower = firstCrossing(evals, target * shrink);
      return lower === null || lower.step >= c.step - 1e-9;
    }), { numRuns: 300 });
  });
});

describe('stepsToQuality', () => {
  it('targets the baseline\'s mean final FD and reports each seed\'s speed-up', () => {
    const methods = new Map<string, RunRecord[]>([
      ['sit-baseline', [run('sit-baseline', 0, [30, 22, 18]), run('sit-baseline', 1, [30, 24, 20])]],
      // REPA seed 0 reaches 19 at step 300 (between 20 at 200 and 18 at 400), seed 1 at 400.
      ['repa', [run('repa', 0, [20, 18, 15]), run('repa', 1, [25, 19, 16])]],
      ['slow', [run('slow', 0, [40, 30, 25]), run('slow', 1, [40, 30, 19])]],
    ]);
    const t = stepsToQuality(methods, 'sit-baseline', 600)!;
    expect(t.target).toBe(19);
    expect(t.step).toBe(600);
    const repa = t.rows.find((r) => r.method === 'repa')!;
    expect(repa.crossings.map((c) => c?.step)).toEqual([300, 400]);
    const md = speedupMarkdown(t, 200).join('\n');
    // 600/300 = 2, 600/400 = 1.5: mean 1.75 with its range.
    expect(md).toMatch(/\| repa \| 2 of 2 \| 350 \(300–400\) \| .* \| 1\.75 \(1\.50–2\.00\)× \|/);
    // One seed never gets there: stated, not averaged away.
    expect(md).toMatch(/\| slow \| 1 of 2 \| 600 \| .* \| 1\.00× for 1 seed; < 1× for 1 \(never reached\) \|/);
    expect(stepsToQuality(methods, 'missing', 600)).toBeNull();
  });
});
