// Property tests of SRA's teacher/student geometry (SRA (github.com/vvvvvjdy/SRA) "Invariants"): the teacher
// time t_T = clamp(t_s − t_max·u, 0, 1) is never noisier than the student's, stays in [0, 1], lags
// by at most t_max, is the student's time when t_max = 0, and moves monotonically with t_s, u and
// t_max; the teacher's block is deeper than the student's in the schema's defaults and in every
// shipped SRA spec. What the actors actually send (t_T ≤ t per sample, the teacher's block) is
// checked on a run in test/protocols/invariants.test.ts.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { sraTeacherTimes } from '../../src/methods/sra/loss.ts';
import { SraSection as SraSpec, sra as sraMethod, scaledTeacherDecay } from '../../src/methods/sra/index.ts';
import { emaDecay } from '../../src/build/parts.ts';
import { parseSpec } from '../../src/spec/load.ts';
import { sectionOf } from '../../src/methods/registry.ts';
import { loadSpec } from '../../src/spec/load.ts';

const unit = fc.double({ min: 0, max: 1, noNaN: true });
const below1 = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const batch = fc.integer({ min: 1, max: 16 }).chain((n) => fc.tuple(
  fc.array(unit, { minLength: n, maxLength: n }),
  fc.array(below1, { minLength: n, maxLength: n }),
));

describe('SRA teacher times (fast-check)', () => {
  it('t_T ∈ [0, 1], t_T ≤ t_s, t_s − t_T ≤ t_max, and t_T = max(0, t_s − t_max·u)', () => {
    fc.assert(fc.property(batch, unit, ([ts, u], tMax) => {
      const tT = sraTeacherTimes(ts, u, tMax);
      expect(tT.length).toBe(ts.length);
      tT.forEach((v, i) => {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(ts[i]);
        expect(ts[i] - v).toBeLessThanOrEqual(tMax + Number.EPSILON * ts[i]); // one rounding of t_s − t_max·u
        expect(v).toBe(Math.max(0, ts[i] - tMax * u[i]));
      });
    }), { seed: 51, numRuns: 300 });
  });

  it('t_max = 0 (or u = 0) gives the student time exactly', () => {
    fc.assert(fc.property(batch, unit, ([ts, u], tMax) => {
      expect(Array.from(sraTeacherTimes(ts, u, 0))).toEqual(ts);
      expect(Array.from(sraTeacherTimes(ts, u.map(() => 0), tMax))).toEqual(ts);
    }), { seed: 52, numRuns: 100 });
  });

  it('is non-increasing in t_max and u and non-decreasing in t_s', () => {
    fc.assert(fc.property(batch, unit, unit, unit, ([ts, u], a, b, c) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      const small = sraTeacherTimes(ts, u, lo), big = sraTeacherTimes(ts, u, hi);
      big.forEach((v, i) => expect(v).toBeLessThanOrEqual(small[i]));
      const moreU = sraTeacherTimes(ts, u.map((x) => Math.max(x, c * 0.999)), hi);
      moreU.forEach((v, i) => expect(v).toBeLessThanOrEqual(big[i]));
      const laterT = sraTeacherTimes(ts.map((x) => x + c * (1 - x)), u, hi);
      laterT.forEach((v, i) => expect(v).toBeGreaterThanOrEqual(big[i]));
    }), { seed: 53, numRuns: 200 });
  });

  it('rejects a negative t_max and mismatched lengths', () => {
    expect(() => sraTeacherTimes([0.5], [0.1], -0.1)).toThrow(/t_max must be >= 0/);
    expect(() => sraTeacherTimes([0.5, 0.2], [0.1], 0.2)).toThrow(/2 times but 1 offsets/);
  });
});

describe('SRA blocks', () => {
  it('the defaults put the teacher deeper than the student (4 → 8, SiT-B)', () => {
    const s = SraSpec.parse({});
    expect([s.student_block, s.teacher_block]).toEqual([4, 8]);
  });

  it('every shipped SRA spec has teacher_block > student_block, both within the model depth', () => {
    const dir = path.join(import.meta.dirname, '../../specs');
    const sra = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).map((f) => loadSpec(path.join(dir, f))).filter((s) => s.methods.includes('sra'));
    expect(sra.length).toBeGreaterThan(0);
    for (const s of sra) {
      const sec = sectionOf(s, sraMethod);
      expect(sec.teacher_block, s.name).toBeGreaterThan(sec.student_block);
      expect(sec.teacher_block, s.name).toBeLessThanOrEqual(s.model.depth!);
    }
  });
});

describe('SRA teacher EMA scaled to the run (teacher_ema)', () => {
  it('keeps the paper\'s lag as a fraction of the run: τ = 1/(1 − d) = N/40, 0.9999 at 400K steps, no warm-up', () => {
    expect(scaledTeacherDecay(400_000)).toBeCloseTo(0.9999, 12);
    fc.assert(fc.property(fc.integer({ min: 41, max: 10_000_000 }), (n) => {
      const d = scaledTeacherDecay(n);
      expect(1 / (1 - d) / n).toBeCloseTo(1 / 40, 9);
    }));
    expect(scaledTeacherDecay(40)).toBe(0); // the teacher is the student itself at or below 40 steps
    expect(scaledTeacherDecay(20)).toBe(0);
  });

  it('scaled overrides train.ema_decay / ema_warmup for the whole run; literal uses them as written', () => {
    const spec = (teacher_ema: 'scaled' | 'literal') => parseSpec({
      name: 's', methods: ['sra'], sra: { teacher_ema }, train: { steps: 600, ema_decay: 0.995, ema_warmup: true },
    });
    for (const k of [0, 1, 10, 599]) expect(emaDecay(spec('scaled'), k)).toBe(1 - 40 / 600);
    expect(emaDecay(spec('literal'), 0)).toBe(Math.min(0.995, 1 / 10));
    expect(emaDecay(spec('literal'), 599)).toBe(Math.min(0.995, 600 / 609));
    // Other methods leave the spec's EMA alone.
    expect(emaDecay(parseSpec({ name: 'r', methods: ['sit-baseline'], train: { steps: 600, ema_decay: 0.99 } }), 500)).toBe(0.99);
  });
});
