// REG's training pieces (REG (github.com/Martinser/REG) "Invariants"): the class token shares t with the image
// and has its own noise, g_t and v_g* in closed form; the alignment target is [g ; P] with the
// class token at index 0 and the loss covers it; at init both velocities are 0, so the loss terms
// are closed forms; gradient routing through the REG model (projector only from L_proj, deeper
// blocks nothing from it, linear_cls only from the class loss, the class-token embedding from both).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backward } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { createRegSiT } from '../../src/models/reg.ts';
import { Projector } from '../../src/models/projector.ts';
import { flowTrainingPair, linear, velocityLoss } from '../../src/diffusion/index.ts';
import { negCosineAlignment, regAlignTarget, regClsLoss, regClsPair, regTotalLoss, repaProjLoss } from '../../src/methods/index.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { perturb, tinySiTConfig, withGrad, zeroAllGrads } from './tiny.ts';

describe('REG training pieces', () => {
  it('g_t = (1 − t)·g + t·ε_g and v_g* = ε_g − g with the image t, per sample', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 1e6 }), (B, d, seed) => {
      const rng = new Rng(seed);
      const g = rng.normal([B, d]), e = rng.normal([B, d]), t = rng.uniformArray(B);
      const p = regClsPair(linear, g, e, t);
      const gt: number[] = [], v: number[] = [];
      for (let i = 0; i < B * d; i++) { const tb = t[Math.floor(i / d)]; gt.push((1 - tb) * g.data[i] + tb * e.data[i]); v.push(e.data[i] - g.data[i]); }
      expectClose('g_t', p.xt.data, gt, 1e-6, 1e-6);
      expectClose('v_g*', p.target.data, v, 1e-6, 1e-6);
    }), { seed: 31, numRuns: 20 });
    expect(() => regClsPair(linear, new Rng(1).normal([2, 3]), new Rng(2).normal([2, 4]), [0.1, 0.2])).toThrow(/one \(B, d_enc\) shape/);
  });

  it('the alignment target is [g ; P] and the loss covers token 0; it stays in [−1, 1]', () => {
    const rng = new Rng(3);
    const g = rng.normal([2, 5]), P = rng.normal([2, 4, 5]);
    const z = regAlignTarget(g, P);
    expect(z.shape).toEqual([2, 5, 5]);
    for (let b = 0; b < 2; b++) {
      expect(Array.from(z.data.subarray(b * 25, b * 25 + 5))).toEqual(Array.from(g.data.subarray(b * 5, b * 5 + 5)));
      expect(Array.from(z.data.subarray(b * 25 + 5, b * 25 + 25))).toEqual(Array.from(P.data.subarray(b * 20, b * 20 + 20)));
    }
    // a prediction equal to the target except a flipped class token: one token of five is antiparallel
    const pred = tensor(Array.from(z.data, (v, i) => ((i % 25) < 5 ? -v : v)), [2, 5, 5]);
    expect(negCosineAlignment(pred, z).item()).toBeCloseTo(-(4 - 1) / 5, 6);
    expect(() => regAlignTarget(rng.normal([2, 6]), P)).toThrow(/does not fit/);
  });

  it('at init the image and class velocities are 0: L_diff = mean((ε − x)²), L_cls = mean((ε_g − g)²)', () => {
    const model = createRegSiT(tinySiTConfig(), 6, 1);
    const rng = new Rng(2);
    const x = rng.normal([3, 1, 8, 8]), eps = rng.normal([3, 1, 8, 8]), g = rng.normal([3, 6]), eg = rng.normal([3, 6]), t = rng.uniformArray(3);
    const img = flowTrainingPair(linear, x, eps, t), cls = regClsPair(linear, g, eg, t);
    const o = model.forward(img.xt, t, [1, 2, 3], { cls: cls.xt, rng: new Rng(4) });
    const mse = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a, (v, i) => (v - b[i]) ** 2).reduce((s, v) => s + v, 0) / a.length;
    expectClose('L_diff', [velocityLoss(o.out, img.target).loss.item()], [mse(eps.data, x.data)], 1e-6, 1e-5);
    expectClose('L_cls', [regClsLoss(o.cls, cls.target).item()], [mse(eg.data, g.data)], 1e-6, 1e-5);
    expect(regTotalLoss(tensor([1], []), tensor([-1], []), tensor([10], []), 0.5, 0.03).item()).toBeCloseTo(1 - 0.5 + 0.3, 6);
  });

  it('gradient routing: projector only from L_proj (which reaches blocks ≤ k and the class embedding), linear_cls only from L_cls', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 0, max: 1000 }), (k, seed) => {
      const model = createRegSiT(tinySiTConfig(), 6, seed);
      perturb(model, seed + 1);
      const proj = new Projector(16, 12, 6, new Rng(seed + 2));
      const rng = new Rng(seed + 3);
      const x = rng.normal([2, 1, 8, 8]), eps = rng.normal([2, 1, 8, 8]), g = rng.normal([2, 6]), eg = rng.normal([2, 6]), P = rng.normal([2, 16, 6]);
      const t = rng.uniformArray(2);
      const img = flowTrainingPair(linear, x, eps, t), cls = regClsPair(linear, g, eg, t);
      const run = (which: 'proj' | 'diff' | 'cls') => {
        zeroAllGrads(model, proj);
        const o = model.forward(img.xt, t, [1, 2], { cls: cls.xt, taps: [k], forceDrop: [0, 0] });
        backward(which === 'proj' ? repaProjLoss([{ pred: proj.forward(o.hidden.get(k)!), target: regAlignTarget(g, P) }])
          : which === 'diff' ? velocityLoss(o.out, img.target).loss : regClsLoss(o.cls, cls.target));
        return withGrad(model);
      };
      const p = run('proj');
      expect(withGrad(proj).length).toBe(6);
      for (let j = k; j < 3; j++) expect(p.filter((n) => n.startsWith(`blocks.${j}.`))).toEqual([]);
      expect(p.filter((n) => n.startsWith('final_layer.'))).toEqual([]);
      expect(p).toEqual(expect.arrayContaining(['cls_projectors2.weight', 'wg_norm.weight', `blocks.${k - 1}.attn.qkv.weight`]));
      const d = run('diff');
      expect(withGrad(proj)).toEqual([]);
      expect(d.filter((n) => n.startsWith('final_layer.linear_cls'))).toEqual([]);
      expect(d).toContain('cls_projectors2.weight'); // the class token is entangled with the image tokens
      const c = run('cls');
      expect(c).toEqual(expect.arrayContaining(['final_layer.linear_cls.weight', 'final_layer.linear_cls.bias', 'x_embedder.proj.weight']));
      expect(c.filter((n) => n.startsWith('final_layer.linear.'))).toEqual([]);
    }), { seed: 32, numRuns: 4 });
  });
});
