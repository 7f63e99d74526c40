// SoftREPA's invariants (methods-b.md §4; src/methods/softrepa/): the loss over B² logits is a
// cross-entropy on the diagonal — positive logits strictly decreasing in E, exactly log B when all
// errors are equal, below log B when every image's own caption has the smallest error and above
// when it has the largest, decreasing in the scale s in the first case, log B in both temperature
// limits, and a shift of E by c equal to the scale s·exp(−c/τ); E is built from B² evaluations
// sharing one t and one ε; soft tokens reach blocks 1..n_layers only and never accumulate (the
// text stream stays L long); stage 2 changes dc_tokens and nothing else; captions carry the class
// name, the null class is the null caption. fast-check values, float64 gradchecks of the loss
// pieces, a finite-difference check of the soft tokens' gradient through the model, the trainer.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backward, gradcheck, indexSelect, noGrad } from '../../src/autograd/index.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { interpolantByName } from '../../src/diffusion/index.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { Trainer } from '../../src/run/reference.ts';
import { checkSpecConsistency, openTrainData } from '../../src/build/setup.ts';
import { CaptionVocab, BEGIN, PAD, TEMPLATES, ATTRIBUTES, words } from '../../src/methods/softrepa/captions.ts';
import { CaptionSiT } from '../../src/methods/softrepa/model.ts';
import { pairErrors, pairIndices, sharedNoising, softRepaLogits, softRepaLoss } from '../../src/methods/softrepa/loss.ts';
import { softRepa, SoftRepaSection } from '../../src/methods/softrepa/index.ts';
import { tinySpec } from '../actors/specs.ts';
import { perturb } from './tiny.ts';

const LN = Math.log;
const lossOf = (e: number[][], s: number, tau: number): number => softRepaLoss(tensor(e.flat(), [e.length, e.length], 'float64'), s, tau).item();

/** B in 2..6 and a B×B matrix of errors in [0, 1]. */
const errors = fc.integer({ min: 2, max: 6 }).chain((b) => fc.array(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: b, maxLength: b }), { minLength: b, maxLength: b }));
const scale = fc.double({ min: 0.5, max: 8, noNaN: true });
const temp = fc.double({ min: 0.05, max: 1, noNaN: true });

/** Each row's diagonal made strictly the smallest (off-diagonals raised by `gap` above it) or the largest. */
function withDiagonal(e: number[][], gap: number, below: boolean): number[][] {
  return e.map((row, i) => {
    const others = row.filter((_, k) => k !== i);
    const d = below ? Math.min(...others) : Math.max(...others) + gap;
    return row.map((v, j) => (i === j ? d : below ? v + gap : v));
  });
}

describe('SoftREPA loss (fast-check)', () => {
  it('logits s·exp(−E/τ) are positive and strictly decreasing in E', () => {
    fc.assert(fc.property(fc.double({ min: 0, max: 2, noNaN: true }), fc.double({ min: 1e-3, max: 1, noNaN: true }), scale, temp, (e, d, s, tau) => {
      const l = softRepaLogits(tensor([e, e + d], [2], 'float64'), s, tau).data;
      expect(l[0]).toBeGreaterThan(0);
      expect(l[1]).toBeGreaterThan(0);
      expect(l[0]).toBeGreaterThan(l[1]);
    }), { numRuns: 100 });
  });

  it('is exactly log B when all errors are equal (dweight 0)', () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 8 }), fc.double({ min: 0, max: 2, noNaN: true }), scale, temp, (b, e, s, tau) => {
      const m = Array.from({ length: b }, () => Array(b).fill(e));
      expect(Math.abs(lossOf(m, s, tau) - LN(b))).toBeLessThan(1e-12);
    }), { numRuns: 60 });
  });

  it('the diagonal is the positive: below log B when each own caption has the smallest error, above when the largest', () => {
    fc.assert(fc.property(errors, scale, fc.double({ min: 0.05, max: 0.3, noNaN: true }), (e, s, tau) => {
      const b = e.length;
      expect(lossOf(withDiagonal(e, 0.05, true), s, tau)).toBeLessThan(LN(b));
      expect(lossOf(withDiagonal(e, 0.05, false), s, tau)).toBeGreaterThan(LN(b));
    }), { numRuns: 80 });
  });

  it('decreases with the scale s when each own caption has the smallest error', () => {
    fc.assert(fc.property(errors, scale, fc.double({ min: 0.2, max: 1, noNaN: true }), (e, s, tau) => {
      const m = withDiagonal(e, 0.05, true);
      expect(lossOf(m, 2 * s, tau)).toBeLessThan(lossOf(m, s, tau));
    }), { numRuns: 80 });
  });

  it('shifting E by c equals scaling s by exp(−c/τ); both temperature limits give log B', () => {
    fc.assert(fc.property(errors, scale, temp, fc.double({ min: -0.5, max: 0.5, noNaN: true }), (e, s, tau, c) => {
      const shifted = e.map((r) => r.map((v) => v + c));
      // Relative: exp(−c/τ) can scale the logits by many orders of magnitude, and the loss with them.
      const a = lossOf(shifted, s, tau), b = lossOf(e, s * Math.exp(-c / tau), tau);
      expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(b)));
      expect(Math.abs(lossOf(e, s, 1e7) - LN(e.length))).toBeLessThan(1e-5);
      expect(Math.abs(lossOf(e.map((r) => r.map((v) => v + 1)), s, 1e-3) - LN(e.length))).toBeLessThan(1e-9);
    }), { numRuns: 400 });
  });

  it('refuses a non-positive temperature and a non-square E, naming what is wrong', () => {
    expect(() => softRepaLogits(tensor([1], [1, 1], 'float64'), 4, 0)).toThrow(/softrepa\.temperature must be > 0/);
    expect(() => softRepaLoss(tensor([1, 2], [1, 2], 'float64'), 4, 0.07)).toThrow(/E must be \(B, B\)/);
  });
});

describe('SoftREPA loss pieces: float64 gradcheck', () => {
  it('softRepaLoss in E, pairErrors in the predictions and targets', () => {
    const rng = new Rng(3);
    const e = rng.uniform([3, 3], 0, 0.3, 'float64');
    const r = gradcheck((x) => softRepaLoss(x, 4, 0.07), [e]);
    expect(r.ok, r.message).toBe(true);
    const v = rng.normal([9, 2, 2, 2], 0, 1, 'float64'), tg = rng.normal([3, 2, 2, 2], 0, 1, 'float64');
    const p = gradcheck((a, b) => pairErrors(a, b), [v, tg]);
    expect(p.ok, p.message).toBe(true);
  });

  it('pairErrors: E[i,j] = mean over (C,H,W) of (target_i − v_{iB+j})², pairs row-major over (image, caption)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 1000 }), (b, seed) => {
      const rng = new Rng(seed);
      const v = rng.normal([b * b, 1, 2, 3], 0, 1, 'float64'), tg = rng.normal([b, 1, 2, 3], 0, 1, 'float64');
      const e = pairErrors(v, tg).data;
      const { image, caption } = pairIndices(b);
      for (let i = 0; i < b; i++) {
        for (let j = 0; j < b; j++) {
          const k = i * b + j;
          expect([image[k], caption[k]]).toEqual([i, j]);
          let s = 0;
          for (let q = 0; q < 6; q++) s += (tg.data[i * 6 + q] - v.data[k * 6 + q]) ** 2;
          expect(e[i * b + j]).toBeCloseTo(s / 6, 12);
        }
      }
    }), { numRuns: 30 });
  });
});

describe('one t and one ε for all pairs', () => {
  it('sharedNoising uses ε[0] and t[0] for every image: x_t,i = (1 − t)x_i + tε, target ε − x_i', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 1000 }), (b, seed) => {
      const rng = new Rng(seed);
      const x = rng.normal([b, 2, 2, 2]), eps = rng.normal([b, 2, 2, 2]), t = rng.uniformArray(b);
      const r = sharedNoising(interpolantByName('linear'), x, eps, t);
      expect(Array.from(r.t)).toEqual(Array(b).fill(t[0]));
      for (let i = 0; i < b; i++) {
        for (let q = 0; q < 8; q++) {
          const e0 = eps.data[q], xi = x.data[i * 8 + q];
          expect(r.eps.data[i * 8 + q]).toBe(e0);
          expect(r.xt.data[i * 8 + q]).toBeCloseTo((1 - t[0]) * xi + t[0] * e0, 5);
          expect(r.target.data[i * 8 + q]).toBeCloseTo(e0 - xi, 5);
        }
      }
    }), { numRuns: 30 });
  });

  it('the stage-2 forward runs the model once on B² rows: row iB+j is x_t,i at the one t with caption j', () => {
    const spec = tinySpec('softrepa');
    const s = spec.softrepa as SoftRepaSection;
    const trainer = new Trainer(spec, openTrainData(spec));
    const model = trainer.model as CaptionSiT;
    const calls: { x: Tensor; t: number[]; y: number[]; captions: Int32Array }[] = [];
    const orig = model.forward.bind(model);
    model.forward = ((x, t, y, o) => { calls.push({ x, t: Array.from(t as ArrayLike<number>), y: Array.from(y as ArrayLike<number>), captions: o!.captions! }); return orig(x, t, y, o); }) as typeof model.forward;
    const B = 4, rng = new Rng(9);
    const x = rng.normal([B, 3, 16, 16]), eps = rng.normal([B, 3, 16, 16]), t = rng.uniformArray(B), y = Int32Array.from([0, 3, 5, 9]);
    const draws = { softrepa: { template: [0, 1, 2, 3], attribute: [0, 1, 2, 3] } };
    const f = softRepa.backbone!.forward(s, model, { input: x, eps, t, y, taps: [], feats: null, draws }, interpolantByName('linear'), new Rng(1));
    expect(calls.length).toBe(1);
    const c = calls[0], per = 768, L = model.vocab.maxTokens;
    expect(c.x.shape[0]).toBe(B * B);
    expect(new Set(c.t)).toEqual(new Set([t[0]]));
    const own = model.vocab.batch(y, draws.softrepa.template, draws.softrepa.attribute);
    for (let i = 0; i < B; i++) {
      for (let j = 0; j < B; j++) {
        const k = i * B + j;
        expect(c.y[k]).toBe(y[j]);
        expect(Array.from(c.captions.subarray(k * L, (k + 1) * L))).toEqual(Array.from(own.subarray(j * L, (j + 1) * L)));
        for (let q = 0; q < per; q += 17) {
          // x_t,i − (1 − t)·x_i is t·ε[0] for every image and caption: one ε
          expect(c.x.data[k * per + q] - (1 - t[0]) * x.data[i * per + q]).toBeCloseTo(t[0] * eps.data[q], 4);
        }
      }
    }
    expect(f.out.shape).toEqual([B, 3, 16, 16]);
    expect(Object.keys(f.terms)).toEqual(['contrastive']);
    // t_range [lo, hi] maps the first draw affinely: every row at lo + (hi − lo)·t[0]
    calls.length = 0;
    softRepa.backbone!.forward({ ...s, t_range: [0.5, 0.9] }, model, { input: x, eps, t, y, taps: [], feats: null, draws }, interpolantByName('linear'), new Rng(1));
    expect(new Set(calls[0].t)).toEqual(new Set([0.5 + 0.4 * t[0]]));
  });
});

describe('caption-conditioned SiT: soft tokens', () => {
  const config = (depth: number) => sitPreset('SiT-T/2', { depth, hiddenSize: 16, numHeads: 2, inputSize: 8, inChannels: 1, numClasses: 4 });
  const vocab = new CaptionVocab(['shirt', 'shoe', 'bag', 'hat'], 9);

  it('blocks 1..n_layers see [n_tok soft ; L text ; N image] tokens, later blocks [L ; N]: the text stream never grows', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), (depth, tokens, layers0) => {
      const layers = Math.min(layers0, depth);
      const m = new CaptionSiT(config(depth), { vocab, textDim: 4, soft: { layers, tokens } }, new Rng(depth));
      const seen: number[] = [];
      for (const b of m.blocks.items) {
        const f = b.forward.bind(b);
        b.forward = (x: Tensor, c: Tensor) => { seen.push(x.shape[1]); return f(x, c); };
      }
      const o = noGrad(() => m.forward(new Rng(1).normal([2, 1, 8, 8]), [0.3, 0.7], [1, 4], { taps: [depth] }));
      const L = 9, N = 16;
      expect(seen).toEqual(Array.from({ length: depth }, (_, k) => (k < layers ? tokens : 0) + L + N));
      expect(o.hidden.get(depth)!.shape).toEqual([2, N, 16]);
    }), { numRuns: 20 });
  });

  it('soft tokens act on the output (vs the same weights without them); block 2\'s tokens leave block 1\'s output unchanged', () => {
    const rng = new Rng(4);
    const x = rng.normal([2, 1, 8, 8]), t = [0.2, 0.9], y = [0, 2];
    const soft = new CaptionSiT(config(3), { vocab, textDim: 4, soft: { layers: 2, tokens: 2 } }, new Rng(7));
    perturb(soft, 8);
    const plain = new CaptionSiT(config(3), { vocab, textDim: 4, soft: null }, new Rng(7));
    plain.loadStateDict(new Map([...soft.stateDict()].filter(([k]) => k !== 'dc_tokens')));
    const a = noGrad(() => soft.forward(x, t, y, { taps: [1, 2, 3] }));
    const b = noGrad(() => plain.forward(x, t, y, { taps: [1, 2, 3] }));
    expect(a.out.data.some((v, i) => Math.abs(v - b.out.data[i]) > 1e-6)).toBe(true); // they act
    // dc_tokens is (layers 2, tokens 2, d_text 4): entries 8.. are block 2's.
    const before = a.hidden.get(1)!.data.slice();
    soft.dc_tokens!.data.subarray(2 * 4).forEach((_, i, arr) => { arr[i] += 0.5; });
    const c = noGrad(() => soft.forward(x, t, y, { taps: [1, 2] }));
    expect(Array.from(c.hidden.get(1)!.data)).toEqual(Array.from(before));
    expect(c.hidden.get(2)!.data.some((v, i) => Math.abs(v - a.hidden.get(2)!.data[i]) > 1e-6)).toBe(true);
  });

  it('the gradient of the contrastive loss in dc_tokens matches central differences (float32, random directions)', () => {
    const m = new CaptionSiT(config(3), { vocab, textDim: 4, soft: { layers: 2, tokens: 2 } }, new Rng(11));
    perturb(m, 12, 0.1);
    m.freezeBase().eval();
    const rng = new Rng(13), B = 3;
    const x = rng.normal([B, 1, 8, 8]), eps = rng.normal([B, 1, 8, 8]), y = [0, 1, 3];
    const captions = vocab.batch(y, [1, 2, 3], [0, 4, 7]);
    const L = 9, { image, caption } = pairIndices(B);
    const pairCaptions = new Int32Array(B * B * L);
    caption.forEach((j, k) => pairCaptions.set(captions.subarray(j * L, (j + 1) * L), k * L));
    const loss = (): Tensor => {
      const { xt, target, t } = sharedNoising(interpolantByName('linear'), x, eps, [0.5]);
      const v = m.forward(indexSelect(xt, 0, image), new Float64Array(B * B).fill(t[0]), Array.from(caption, (j) => y[j]), { captions: pairCaptions }).out;
      return softRepaLoss(pairErrors(v, target), 4, 0.07);
    };
    backward(loss());
    const g = Float64Array.from(m.dc_tokens!.grad!.data);
    expect(g.some((v) => v !== 0)).toBe(true);
    const p = m.dc_tokens!.data, h = 1e-2;
    for (let trial = 0; trial < 3; trial++) {
      const d = new Rng(20 + trial).normalArray(p.length);
      const at = (sgn: number) => { p.forEach((_, i) => { p[i] += sgn * h * d[i]; }); const v = noGrad(loss).item(); p.forEach((_, i) => { p[i] -= sgn * h * d[i]; }); return v; };
      const fd = (at(1) - at(-1)) / (2 * h);
      const an = g.reduce((s, gi, i) => s + gi * d[i], 0);
      expect(Math.abs(fd - an), `direction ${trial}: fd ${fd} vs analytic ${an}`).toBeLessThanOrEqual(2e-2 * Math.max(Math.abs(an), 1e-3));
    }
  });
});

describe('stage 2 trains the soft tokens only', () => {
  it('after 3 steps dc_tokens moved; every other tensor of the model and its EMA is bit-identical to the stage-1 init', () => {
    const spec = tinySpec('softrepa', { train: { ...tinySpec('softrepa').train, steps: 3 } });
    const trainer = new Trainer(spec, openTrainData(spec));
    const before = new Map([...trainer.model.stateDict()].map(([k, t]) => [k, Float32Array.from(t.data)]));
    const emaBefore = new Map([...trainer.emaModel.stateDict()].map(([k, t]) => [k, Float32Array.from(t.data)]));
    for (let i = 0; i < 3; i++) trainer.trainStep();
    for (const [k, t] of trainer.model.stateDict()) {
      if (k === 'dc_tokens') expect(Array.from(t.data)).not.toEqual(Array.from(before.get(k)!));
      else expect(Array.from(t.data), k).toEqual(Array.from(before.get(k)!));
    }
    for (const [k, t] of trainer.emaModel.stateDict()) if (k !== 'dc_tokens') expect(Array.from(t.data), `ema ${k}`).toEqual(Array.from(emaBefore.get(k)!));
    const state = trainer.opt.state();
    expect(new Set([...state.tensors.keys()].map((k) => k.replace(/\.(exp_avg|exp_avg_sq|step)$/, '')))).toEqual(new Set(['dc_tokens']));
  });
});

describe('captions', () => {
  const names = ['T-shirt/top', 'Trouser', 'Ankle boot'];
  const vocab = new CaptionVocab(names, 10);

  it('carry the class name after begin and end in pads; the null class is begin and pads only', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: TEMPLATES.length - 1 }), fc.integer({ min: 0, max: ATTRIBUTES.length - 1 }), (label, tpl, attr) => {
      const ids = vocab.batch([label], [tpl], [attr]);
      expect(ids[0]).toBe(BEGIN);
      if (label === names.length) { expect(Array.from(ids.subarray(1))).toEqual(Array(9).fill(PAD)); return; }
      const text = Array.from(ids).filter((i) => i > BEGIN).map((i) => vocab.words[i]);
      expect(text.join(' ')).toContain(words(names[label]).join(' '));
      const firstPad = ids.indexOf(PAD);
      if (firstPad > 0) expect(Array.from(ids.subarray(firstPad)).every((i) => i === PAD)).toBe(true);
    }), { numRuns: 100 });
  });

  it('a dropped label gets the null caption in the model; bad sections name the field', () => {
    const m = new CaptionSiT(sitPreset('SiT-T/2', { depth: 1, hiddenSize: 8, numHeads: 2, inputSize: 4, inChannels: 1, numClasses: 3 }), { vocab, textDim: 4, soft: null }, new Rng(1));
    const ids = vocab.batch([0, 1], [1, 1], [1, 1]);
    const a = noGrad(() => m.text(Int32Array.from([3, 1]), ids)).data;
    const b = noGrad(() => m.text(Int32Array.from([3, 1]), vocab.batch([3, 1], [0, 1], [0, 1]))).data;
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(() => new CaptionVocab(names, 4)).toThrow(/softrepa\.max_tokens is 4/);
    expect(() => new CaptionSiT(sitPreset('SiT-T/2', { depth: 1, hiddenSize: 8, numHeads: 2, inputSize: 4, inChannels: 1, numClasses: 5 }), { vocab, textDim: 4, soft: null }, new Rng(1))).toThrow(/softrepa\.class_names has 3 names but the data has 5 classes/);
    const bad = tinySpec('softrepa', { softrepa: { stage: 'pretrain', init: 'x.safetensors' } });
    expect(() => checkSpecConsistency(bad, 3)).toThrow(/softrepa\.init is read in stage 'soft' only/);
    expect(() => checkSpecConsistency(tinySpec('softrepa', { train: { ...bad.train, batch_size: 1 } }), 3)).toThrow(/train\.batch_size is 1/);
    expect(() => checkSpecConsistency(tinySpec('softrepa', { softrepa: { t_range: [0.8, 0.2] } }), 3)).toThrow(/softrepa\.t_range must be \[lo, hi\] with lo < hi/);
  });
});
