// SRA invariants (SRA (github.com/vvvvvjdy/SRA) "Invariants"): teacher times t_T = clamp(t_s − t_max·u) with
// t_T ≤ t_s, t_T ∈ [0, 1], t_max = 0 ⇒ t_T = t_s; the four alignment losses against float64 loop
// references (cos over the official token axis and per token), cos ∈ [0, 2]; SimpleHead layout;
// the partial teacher forward equals the full forward's tap; gradient routing (the head learns only
// from L_align, blocks > L_s get nothing from it, the teacher gets nothing); the identity case
// (L_s = L_T, t_max = 0, identity head, teacher = student) gives L_align = 0; the weight schedule.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backward, noGrad, currentTape } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { createSiT } from '../../src/models/sit.ts';
import { flowTrainingPair, interpolate, linear, velocityLoss } from '../../src/diffusion/index.ts';
import {
  SimpleHead, hiddenAfterBlock, sraAlignLoss, sraAlignWeight, sraTeacherTimes, type SraLossOptions,
} from '../../src/methods/index.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { gradMax, makeIdentity, tinySiT, tinySiTConfig, withGrad, zeroAllGrads } from './tiny.ts';

/** Reference of every variant in float64 over (B, T, D) arrays. */
function alignRef(s: ArrayLike<number>, t: ArrayLike<number>, [B, T, D]: number[], o: SraLossOptions): number {
  const n = B * T * D;
  let acc = 0;
  if (o.kind !== 'cos') {
    const beta = o.kind === 'sml1' ? (o.beta ?? 0.05) : 0;
    for (let i = 0; i < n; i++) {
      const d = s[i] - t[i], a = Math.abs(d);
      acc += o.kind === 'l2' ? d * d : o.kind === 'l1' ? a : (a < beta ? (0.5 * d * d) / beta : a - 0.5 * beta);
    }
    return acc / n;
  }
  const tokens = (o.cosAxis ?? 'tokens') === 'tokens';
  const [outer, len] = tokens ? [B * D, T] : [B * T, D];
  for (let r = 0; r < outer; r++) {
    let st = 0, ss = 0, tt = 0;
    for (let j = 0; j < len; j++) {
      const i = tokens ? Math.floor(r / D) * T * D + j * D + (r % D) : r * D + j;
      st += s[i] * t[i]; ss += s[i] * s[i]; tt += t[i] * t[i];
    }
    acc += st / (Math.max(Math.sqrt(ss), 1e-8) * Math.max(Math.sqrt(tt), 1e-8));
  }
  return 1 - acc / outer;
}

describe('SRA teacher times', () => {
  it('t_T ≤ t_s, t_T ∈ [0, 1], t_max = 0 gives t_T = t_s', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })), { minLength: 1, maxLength: 20 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (pairs, tMax) => {
        const ts = pairs.map((p) => p[0]), u = pairs.map((p) => p[1]);
        const tT = sraTeacherTimes(ts, u, tMax);
        tT.forEach((v, i) => {
          expect(v).toBeLessThanOrEqual(ts[i]);
          expect(v).toBeGreaterThanOrEqual(0);
          expect(v).toBeLessThanOrEqual(1);
          expect(v).toBe(Math.max(0, ts[i] - tMax * u[i]));
        });
        expect(Array.from(sraTeacherTimes(ts, u, 0))).toEqual(ts);
      }), { seed: 21, numRuns: 200 });
    expect(() => sraTeacherTimes([0.5], [0.1, 0.2], 0.2)).toThrow(/1 times but 2 offsets/);
  });
});

describe('SRA alignment losses', () => {
  const variants: SraLossOptions[] = [
    { kind: 'sml1' }, { kind: 'sml1', beta: 0.5 }, { kind: 'l1' }, { kind: 'l2' },
    { kind: 'cos' }, { kind: 'cos', cosAxis: 'tokens' }, { kind: 'cos', cosAxis: 'features' },
  ];
  it('every variant equals its float64 reference; cos lies in [0, 2]; identical inputs give 0', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 1e6 }),
      (B, T, D, seed) => {
        const rng = new Rng(seed);
        // scale 0.1 puts many differences below β = 0.05, exercising both SmoothL1 branches
        const s = rng.normal([B, T, D], 0, 0.1), t = rng.normal([B, T, D], 0, 0.1);
        for (const o of variants) {
          const l = sraAlignLoss(s, t, o).item();
          expect(Math.abs(l - alignRef(s.data, t.data, [B, T, D], o)), JSON.stringify(o)).toBeLessThan(1e-6);
          if (o.kind === 'cos') { expect(l).toBeGreaterThanOrEqual(-1e-6); expect(l).toBeLessThanOrEqual(2 + 1e-6); }
          expect(Math.abs(sraAlignLoss(s, s, o).item()), `${JSON.stringify(o)} of x with itself`).toBeLessThan(1e-6);
        }
      }), { seed: 22, numRuns: 30 });
  });

  it('the default cos axis is the official one (across tokens), which differs from per-token', () => {
    const rng = new Rng(4);
    const s = rng.normal([2, 5, 3]), t = rng.normal([2, 5, 3]);
    expect(sraAlignLoss(s, t, { kind: 'cos' }).item()).toBe(sraAlignLoss(s, t, { kind: 'cos', cosAxis: 'tokens' }).item());
    expect(Math.abs(sraAlignLoss(s, t, { kind: 'cos' }).item() - sraAlignLoss(s, t, { kind: 'cos', cosAxis: 'features' }).item())).toBeGreaterThan(1e-3);
    expect(() => sraAlignLoss(s, rng.normal([2, 4, 3]), { kind: 'l2' })).toThrow(/one \(B, T, D\) shape/);
  });
});

describe('SimpleHead', () => {
  it('is SRA ap_head: linear1 D → 2D, SiLU, linear2 2D → D, xavier weights, zero biases', () => {
    const h = new SimpleHead(6, 6, new Rng(1));
    expect(h.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`)).toEqual(['linear1.weight:12x6', 'linear1.bias:12', 'linear2.weight:6x12', 'linear2.bias:6']);
    for (const l of [h.linear1, h.linear2]) {
      const a = Math.sqrt(6 / (l.inFeatures + l.outFeatures));
      const m = Math.max(...l.weight.toArray().map(Math.abs));
      expect(m).toBeLessThanOrEqual(a);
      expect(m).toBeGreaterThan(0.7 * a);
      expect(l.bias!.toArray().every((v) => v === 0)).toBe(true);
    }
    const x = new Rng(2).normal([1, 2, 6]);
    const ref: number[] = [];
    for (let r = 0; r < 2; r++) {
      const hid = Array.from({ length: 12 }, (_, j) => { let s = 0; for (let k = 0; k < 6; k++) s += x.data[r * 6 + k] * h.linear1.weight.data[j * 6 + k]; return s / (1 + Math.exp(-s)); });
      for (let j = 0; j < 6; j++) { let s = 0; for (let k = 0; k < 12; k++) s += hid[k] * h.linear2.weight.data[j * 12 + k]; ref.push(s); }
    }
    expectClose('head forward', h.forward(x).data, ref, 1e-6, 1e-5);
  });
});

describe('SRA student / teacher', () => {
  it('the partial teacher forward equals the full forward tap, bit for bit, and records nothing under noGrad', () => {
    const m = tinySiT(3).eval();
    const rng = new Rng(4);
    const x = rng.normal([2, 1, 8, 8]), t = [0.2, 0.7], y = [3, 10];
    const full = m.forward(x, t, y, { taps: [1, 2, 3] });
    for (const k of [1, 2, 3]) expect(hiddenAfterBlock(m, x, t, y, k).toArray(), `block ${k}`).toEqual(full.hidden.get(k)!.toArray());
    const before = currentTape().length;
    noGrad(() => hiddenAfterBlock(m, x, t, y, 2));
    expect(currentTape().length).toBe(before);
    expect(() => hiddenAfterBlock(m, x, t, y, 4)).toThrow(/block 4 is not in 1..3/);
  });

  it('identity case: L_s = L_T, t_max = 0, identity head, teacher = student gives L_align = 0 (sml1, l2)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 1000 }), (L, seed) => {
      const student = tinySiT(seed);
      const teacher = createSiT(tinySiTConfig(), seed + 1).eval();
      teacher.loadStateDict(student.stateDict());
      const head = makeIdentity(new SimpleHead(16, 16, new Rng(0)));
      const rng = new Rng(seed + 2);
      const x = rng.normal([3, 1, 8, 8]), eps = rng.normal([3, 1, 8, 8]), ts = rng.uniformArray(3);
      const tT = sraTeacherTimes(ts, rng.uniformArray(3), 0);
      const { xt } = flowTrainingPair(linear, x, eps, ts);
      // some labels dropped to null; the teacher must see the same post-dropout labels
      const s = student.forward(xt, ts, [1, 2, 3], { taps: [L], rng: new Rng(seed + 3), forceDrop: [1, 0, 1] });
      expect(Array.from(s.labels)).toEqual([10, 2, 10]);
      const u = head.forward(s.hidden.get(L)!);
      const hT = noGrad(() => hiddenAfterBlock(teacher, interpolate(linear, x, eps, tT), tT, s.labels, L));
      for (const kind of ['sml1', 'l2'] as const) expect(sraAlignLoss(u, hT, { kind }).item(), kind).toBeLessThan(1e-10);
    }), { seed: 23, numRuns: 5 });
  });

  it('L_align reaches the head and blocks ≤ L_s only, never the teacher; L_diff never reaches the head', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 1000 }), (Ls, LT, seed) => {
      const student = tinySiT(seed);
      const teacher = tinySiT(seed + 1).eval();
      const head = new SimpleHead(16, 16, new Rng(seed + 2));
      const rng = new Rng(seed + 3);
      const x = rng.normal([2, 1, 8, 8]), eps = rng.normal([2, 1, 8, 8]), ts = rng.uniformArray(2);
      const tT = sraTeacherTimes(ts, rng.uniformArray(2), 0.2);
      const { xt, target } = flowTrainingPair(linear, x, eps, ts);
      const run = (which: 'align' | 'diff') => {
        zeroAllGrads(student, teacher, head);
        const s = student.forward(xt, ts, [4, 5], { taps: [Ls], forceDrop: [0, 1] });
        const hT = noGrad(() => hiddenAfterBlock(teacher, interpolate(linear, x, eps, tT), tT, s.labels, LT));
        backward(which === 'align' ? sraAlignLoss(head.forward(s.hidden.get(Ls)!), hT, { kind: 'cos' }) : velocityLoss(s.out, target).loss);
      };
      run('align');
      expect(withGrad(head).length).toBe(4);
      const got = withGrad(student);
      for (let j = Ls; j < 3; j++) expect(got.filter((n) => n.startsWith(`blocks.${j}.`)), `block ${j + 1} > L_s = ${Ls}`).toEqual([]);
      expect(got.filter((n) => n.startsWith('final_layer.'))).toEqual([]);
      expect(got.some((n) => n.startsWith(`blocks.${Ls - 1}.`))).toBe(true);
      expect(teacher.parameters().every((p) => p.grad === null)).toBe(true);
      run('diff');
      expect(head.parameters().every((p) => gradMax(p) === 0)).toBe(true);
      expect(teacher.parameters().every((p) => p.grad === null)).toBe(true);
    }), { seed: 24, numRuns: 4 });
  });
});

describe('SRA alignment weight', () => {
  it('constant, or the official sml1 decay 2·0.1^(1 + (epoch − 149)/1000) after epoch 149', () => {
    expect(sraAlignWeight(500, { kind: 'constant', weight: 0.5 })).toBe(0.5);
    const s = { kind: 'epoch-decay', weight: 0.2, startEpoch: 149, spanEpochs: 1000 } as const;
    for (const e of [0, 100, 149]) expect(sraAlignWeight(e, s)).toBe(0.2);
    for (const e of [150, 400, 800]) expect(sraAlignWeight(e, s)).toBeCloseTo(2 * 0.1 ** (1 + (e - 149) / 1000), 12);
    expect(sraAlignWeight(800, s)).toBeCloseTo(0.0447, 4);
    fc.assert(fc.property(fc.integer({ min: 150, max: 5000 }), (e) => sraAlignWeight(e + 1, s) < sraAlignWeight(e, s)), { seed: 25, numRuns: 50 });
  });
});
