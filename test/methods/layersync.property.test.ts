// LayerSync's invariants (the paper and vita-epfl/LayerSync transport/transport.py; see
// src/methods/layersync/index.ts): L_reg ∈ [−1, 1]; with the student block equal to the teacher
// block L_reg ≡ −1 and no gradient reaches the model; the gradient of L_reg is zero for blocks
// deeper than the student block (the teacher path is detached) and non-zero for blocks up to it;
// both hidden states come from the same forward (same t, x_t, labels); no parameters are added;
// its time convention (t = 1 data, target x − ε) meets diffactor's (t = 0 data, target ε − x) at
// t = 1 − t_LayerSync with the velocity negated. Checked with fast-check values, a finite-difference
// gradient, and a tiny SiT.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backward, gradcheck } from '../../src/autograd/index.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { flowTrainingPair, linear } from '../../src/diffusion/index.ts';
import { fromLayerSyncTime, layerSync, layerSyncLoss, LayerSyncSection } from '../../src/methods/layersync/index.ts';
import { parseSpec } from '../../src/spec/load.ts';
import { buildHeads } from '../../src/build/parts.ts';
import { tinySiT, tinySiTConfig, gradMax, withGrad } from './tiny.ts';

const hidden = fc.record({ B: fc.integer({ min: 1, max: 3 }), T: fc.integer({ min: 1, max: 5 }), D: fc.integer({ min: 1, max: 6 }) })
  .chain(({ B, T, D }) => fc.tuple(fc.constant([B, T, D]), fc.array(fc.double({ min: -50, max: 50, noNaN: true }), { minLength: 2 * B * T * D, maxLength: 2 * B * T * D })))
  .map(([shape, v]) => {
    const n = shape[0] * shape[1] * shape[2];
    // every token gets a direction (a zero token's cosine is 0 by the eps, fine, but keep them defined)
    const fix = (a: number[]) => a.map((x, i) => (i % shape[2] === 0 && Math.abs(x) < 1e-3 ? 1 : x));
    return { shape, hs: fix(v.slice(0, n)), ht: fix(v.slice(n)) };
  });

describe('LayerSync L_reg (fast-check)', () => {
  it('lies in [−1, 1] and gives no gradient to the (detached) deeper block', () => {
    fc.assert(fc.property(hidden, ({ shape, hs, ht }) => {
      const a = tensor(hs, shape).requireGrad(), b = tensor(ht, shape).requireGrad();
      const l = layerSyncLoss(a, b);
      expect(l.item()).toBeGreaterThanOrEqual(-1 - 2e-6);
      expect(l.item()).toBeLessThanOrEqual(1 + 2e-6);
      backward(l);
      expect(b.grad).toBeNull();
      expect(a.grad).not.toBeNull();
    }), { numRuns: 60 });
  });

  it('is −1 with a zero gradient when the two hidden states are the same tensor (student block == teacher block)', () => {
    fc.assert(fc.property(hidden, ({ shape, hs }) => {
      const h = tensor(hs, shape).requireGrad();
      const l = layerSyncLoss(h, h);
      expect(l.item()).toBeCloseTo(-1, 5);
      backward(l);
      // d/dh of −cos(h, sg(h)) at h: (−1/‖h‖)(ĥ − (ĥ·ĥ)ĥ) = 0 per token
      for (const g of h.grad!.data) expect(Math.abs(g)).toBeLessThan(1e-5);
    }), { numRuns: 40 });
  });

  it('its gradient wrt the shallow block matches central finite differences (float64)', () => {
    const rng = new Rng(3);
    const hs = tensor(rng.normalArray(2 * 3 * 4), [2, 3, 4], 'float64');
    const ht = tensor(rng.normalArray(2 * 3 * 4), [2, 3, 4], 'float64');
    const r = gradcheck((a, b) => layerSyncLoss(a, b), [hs, ht], { skip: [1] });
    expect(r.ok, r.message).toBe(true);
  });
});

describe('LayerSync on a SiT (one forward)', () => {
  const forward = (s: number, t: number) => {
    const model = tinySiT(11, 4);
    const rng = new Rng(5);
    const x = tensor(rng.normalArray(2 * 1 * 8 * 8), [2, 1, 8, 8]);
    const eps = tensor(rng.normalArray(2 * 1 * 8 * 8), [2, 1, 8, 8]);
    const times = Float64Array.from([0.3, 0.8]);
    const { xt } = flowTrainingPair(linear, x, eps, times);
    const o = model.forward(xt, times, [1, 3], { taps: [s, t], rng: new Rng(6) });
    const sec = LayerSyncSection.parse({ student_block: s, teacher_block: t });
    const terms = layerSync.studentTerms!(sec, { out: o.out, target: o.out, hidden: o.hidden, labels: o.labels, terms: {} }, { prefixTokens: 0 });
    return { model, o, sec, terms };
  };

  it('reads both blocks of the same forward, weighted by reg_weight (0.2)', () => {
    const { o, terms, sec } = forward(1, 3);
    expect(sec.reg_weight).toBe(0.2);
    expect(terms.sync.weight).toBe(0.2);
    expect(terms.sync.value.item()).toBe(layerSyncLoss(o.hidden.get(1)!, o.hidden.get(3)!).item());
  });

  it('gradient reaches blocks up to the student block and none deeper', () => {
    const { model, terms } = forward(2, 4);
    backward(terms.sync.value);
    const grads = withGrad(model);
    for (let b = 0; b < 4; b++) {
      const has = grads.some((n) => n.startsWith(`blocks.${b}.`));
      expect(has, `block ${b + 1}`).toBe(b + 1 <= 2);
    }
    // the embedders feed block 1, so they learn from it too; the final layer never does
    expect(grads.some((n) => n.startsWith('x_embedder.'))).toBe(true);
    expect(grads.some((n) => n.startsWith('final_layer.'))).toBe(false);
  });

  it('student == teacher block: L_reg = −1 and no parameter gets a gradient', () => {
    const { model, terms } = forward(2, 2);
    expect(terms.sync.value.item()).toBeCloseTo(-1, 5);
    backward(terms.sync.value);
    for (const [name, p] of model.namedParameters()) expect(gradMax(p), name).toBeLessThan(1e-6);
  });

  it('adds no parameters: a LayerSync run has no heads', () => {
    const spec = parseSpec({ name: 'ls', methods: ['layersync'], layersync: { student_block: 1, teacher_block: 2 } });
    expect(buildHeads(spec, tinySiTConfig(3), null)).toBeNull();
  });

  it('refuses a teacher block shallower than the student block, naming both fields', () => {
    expect(() => layerSync.check!(LayerSyncSection.parse({ student_block: 3, teacher_block: 2 }), { name: 'x' } as never))
      .toThrow(/layersync\.teacher_block \(2\) must be at least layersync\.student_block \(3\)/);
  });
});

describe('LayerSync time convention at the boundary', () => {
  it('t_ours = 1 − t_LayerSync gives the same x_t, and the velocity target is negated', () => {
    fc.assert(fc.property(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: -3, max: 3, noNaN: true }), fc.double({ min: -3, max: 3, noNaN: true }), (tl, x, e) => {
      // LayerSync (ICPlan): x_t = t·x + (1 − t)·ε, u = x − ε (t = 1 is data)
      const theirs = tl * x + (1 - tl) * e, u = x - e;
      const t = fromLayerSyncTime(tl);
      const ours = linear.alpha(t) * x + linear.sigma(t) * e; // diffactor: t = 0 is data
      const v = e - x; // flowTrainingPair's target on the linear path: dσ·ε + dα·x
      expect(ours).toBeCloseTo(theirs, 12);
      expect(v).toBeCloseTo(-u, 12);
      expect(fromLayerSyncTime(fromLayerSyncTime(tl))).toBeCloseTo(tl, 15);
    }));
  });

  it('flowTrainingPair agrees: its target is −u at t = 1 − t_LayerSync', () => {
    const x = tensor([0.5, -1.25], [2, 1, 1, 1]), e = tensor([2, 0.25], [2, 1, 1, 1]);
    const tl = [0.2, 0.9];
    const { xt, target } = flowTrainingPair(linear, x, e, Float64Array.from(tl.map(fromLayerSyncTime)));
    const want = (i: number, v: (a: number, b: number) => number) => v(x.data[i], e.data[i]);
    for (let i = 0; i < 2; i++) {
      expect(xt.data[i]).toBeCloseTo(want(i, (a, b) => tl[i] * a + (1 - tl[i]) * b), 6);
      expect(target.data[i]).toBeCloseTo(-want(i, (a, b) => a - b), 6);
    }
  });
});
