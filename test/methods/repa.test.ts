// REPA invariants (REPA (github.com/sihyun-yu/REPA) "Invariants to property-test"): L_proj against a float64 loop
// reference and in [−1, 1], −1 exactly when every projected token is parallel to its target;
// token counts must match; gradient routing — the projector learns only from L_proj, blocks deeper
// than encoder_depth and the final layer get nothing from it, the encoder never gets a gradient;
// at init the output is 0, so L_diff = mean((ε − x)²).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backward } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { Projector } from '../../src/models/projector.ts';
import { createSiT } from '../../src/models/sit.ts';
import { flowTrainingPair, linear, velocityLoss } from '../../src/diffusion/index.ts';
import { negCosineAlignment, repaProjLoss, repaTotalLoss } from '../../src/methods/repa/loss.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { gradMax, tinyEncoder, tinySiT, tinySiTConfig, withGrad, zeroAllGrads } from './tiny.ts';

/** −mean_{b,n} <a/‖a‖, b/‖b‖> in float64 with F.normalize's eps. */
function projLossRef(a: ArrayLike<number>, b: ArrayLike<number>, rows: number, d: number): number {
  let s = 0;
  for (let r = 0; r < rows; r++) {
    let ab = 0, aa = 0, bb = 0;
    for (let j = 0; j < d; j++) { const u = a[r * d + j], v = b[r * d + j]; ab += u * v; aa += u * u; bb += v * v; }
    s += ab / (Math.max(Math.sqrt(aa), 1e-12) * Math.max(Math.sqrt(bb), 1e-12));
  }
  return -s / rows;
}

describe('REPA alignment loss', () => {
  it('equals the float64 reference and lies in [−1, 1]; parallel tokens give −1, antiparallel +1', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 1e6 }),
      (B, T, D, seed) => {
        const rng = new Rng(seed);
        const a = rng.normal([B, T, D]), b = rng.normal([B, T, D]);
        const l = negCosineAlignment(a, b).item();
        expect(Math.abs(l - projLossRef(a.data, b.data, B * T, D))).toBeLessThan(1e-6);
        expect(l).toBeGreaterThanOrEqual(-1 - 1e-6);
        expect(l).toBeLessThanOrEqual(1 + 1e-6);
        // z̃_bn = c_bn z*_bn with c_bn > 0 per token: exactly aligned
        const c = rng.uniformArray(B * T, 0.1, 5);
        const par = tensor(Array.from(b.data, (v, i) => v * c[Math.floor(i / D)]), [B, T, D]);
        expect(negCosineAlignment(par, b).item()).toBeCloseTo(-1, 6);
        expect(negCosineAlignment(tensor(Array.from(par.data, (v) => -v), [B, T, D]), b).item()).toBeCloseTo(1, 6);
      }), { seed: 11, numRuns: 40 });
  });

  it('averages several encoders and adds λ·L_proj', () => {
    const rng = new Rng(2);
    const [a1, b1, a2, b2] = [0, 1, 2, 3].map(() => rng.normal([2, 5, 4]));
    const l = repaProjLoss([{ pred: a1, target: b1 }, { pred: a2, target: b2 }]).item();
    expect(l).toBeCloseTo((projLossRef(a1.data, b1.data, 10, 4) + projLossRef(a2.data, b2.data, 10, 4)) / 2, 6);
    expect(repaTotalLoss(tensor([0.25], []), tensor([-0.5], []), 0.5).item()).toBeCloseTo(0, 12);
  });

  it('asserts matching token counts (index-wise alignment on one grid) and widths', () => {
    const rng = new Rng(3);
    expect(() => negCosineAlignment(rng.normal([2, 16, 8]), rng.normal([2, 64, 8]))).toThrow(/16 tokens but the encoder 64.*grid/);
    expect(() => negCosineAlignment(rng.normal([2, 16, 8]), rng.normal([2, 16, 6]))).toThrow(/width 8 differs from the encoder width 6/);
    expect(() => negCosineAlignment(rng.normal([2, 16, 8]), rng.normal([3, 16, 8]))).toThrow(/batch 2/);
  });
});

describe('REPA gradient routing', () => {
  it('L_proj reaches the projector and blocks ≤ k only; L_diff never reaches the projector; the encoder gets nothing', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 0, max: 1000 }), (k, seed) => {
      const model = tinySiT(seed), enc = tinyEncoder(seed + 1);
      const proj = new Projector(16, 12, enc.dim, new Rng(seed + 2));
      const rng = new Rng(seed + 3);
      const x = rng.normal([2, 1, 8, 8]), eps = rng.normal([2, 1, 8, 8]), t = rng.uniformArray(2);
      const { xt, target } = flowTrainingPair(linear, x, eps, t);
      const run = (which: 'proj' | 'diff') => {
        zeroAllGrads(model, proj, enc.vit);
        const feats = enc.features(x);
        const { out, hidden } = model.forward(xt, t, [1, 2], { taps: [k], forceDrop: [0, 0] });
        backward(which === 'proj'
          ? repaProjLoss([{ pred: proj.forward(hidden.get(k)!), target: feats.patch }])
          : velocityLoss(out, target).loss);
      };
      run('proj');
      expect(withGrad(proj).length).toBe(proj.parameters().length);
      const got = withGrad(model);
      for (let j = k; j < 3; j++) expect(got.filter((n) => n.startsWith(`blocks.${j}.`)), `block ${j + 1} > k = ${k}`).toEqual([]);
      expect(got.filter((n) => n.startsWith('final_layer.'))).toEqual([]);
      for (let j = 0; j < k; j++) expect(got.some((n) => n.startsWith(`blocks.${j}.attn.`)), `block ${j + 1} ≤ k`).toBe(true);
      expect(enc.vit.parameters().every((p) => p.grad === null && !p.requiresGrad)).toBe(true);
      run('diff');
      expect(proj.parameters().every((p) => gradMax(p) === 0)).toBe(true);
      expect(withGrad(model).some((n) => n.startsWith('blocks.2.'))).toBe(true);
    }), { seed: 5, numRuns: 4 });
  });

  it('at init the model outputs 0, so L_diff = mean((ε − x)²)', () => {
    const model = createSiT(tinySiTConfig(), 7);
    const rng = new Rng(8);
    const x = rng.normal([3, 1, 8, 8]), eps = rng.normal([3, 1, 8, 8]), t = rng.uniformArray(3);
    const { xt, target } = flowTrainingPair(linear, x, eps, t);
    const l = velocityLoss(model.forward(xt, t, [0, 1, 2], { rng: new Rng(1) }).out, target).loss.item();
    let ref = 0;
    for (let i = 0; i < x.size; i++) ref += (eps.data[i] - x.data[i]) ** 2 / x.size;
    expectClose('L_diff at init', [l], [ref], 1e-6, 1e-5);
  });
});
