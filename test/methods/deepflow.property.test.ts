// DeepFlow (src/methods/deepflow): finite-difference gradchecks (float64) of every new piece —
// ACC_MLP, the time-gap modulation (clamp on and off), the cross-space attention, the L_acc step —
// and property tests of the spec's invariants over values fast-check generates:
//   branch times: β = 0 ⇒ all equal; |t_{k+1} − t_k| ≤ β; in [0, 1]; one sign per batch
//   L_acc: zero gradient to the velocity (detached) and so to the shared intermediate velocity
//          head, non-zero to ACC_MLP, the acceleration head and the trunk; 0 at the exact velocity
//          with a = 0 and at a = 2(x − x̂_0(v))/t² for any v
//   at init v_k ≡ 0, a_k ≡ 0 ⇒ L_acc = Σ_k mean_b t_k²·mean(ε − x)²
//   K = 1 (no cut) is the SiT of the seed, weight for weight and output for output; sampling's
//   forward is v_K with every branch at t; the partial forward equals the full one
//   the time convention at the boundary (identity: t = 1 noise in both) and errors naming fields.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { add, backward, gradcheck, mul, sum } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { linear, interpolate } from '../../src/diffusion/index.ts';
import { createSiT } from '../../src/models/sit.ts';
import { hiddenAfterBlock } from '../../src/methods/partialForward.ts';
import { accMlp, crossSpaceAttention, timeGapModulation, type LinearParams } from '../../src/methods/deepflow/vera.ts';
import { DeepFlowSiT, createDeepFlowSiT } from '../../src/methods/deepflow/model.ts';
import { accelerationLoss, accelerationTerm, branchTimes } from '../../src/methods/deepflow/loss.ts';
import { DeepFlowSection, deepflow } from '../../src/methods/deepflow/index.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { perturb, tinySiTConfig, withGrad, zeroAllGrads } from './tiny.ts';

const f64 = (rng: Rng, shape: number[], std = 1): Tensor => rng.normal(shape, 0, std, 'float64');
const lin = (rng: Rng, i: number, o: number): LinearParams => ({ weight: f64(rng, [o, i], 0.5), bias: f64(rng, [o], 0.1) });

describe('VeRA pieces: gradchecks (float64 central differences)', () => {
  const rng = new Rng(3);
  const D = 4, B = 2, T = 3;

  it('ACC_MLP: Linear–SiLU ×3, Linear, wrt the input and every weight', () => {
    const ls = [lin(rng, D, 5), lin(rng, 5, 10), lin(rng, 10, 5), lin(rng, 5, D)];
    const flat = ls.flatMap((l) => [l.weight, l.bias]);
    const r = gradcheck((h, ...w) => accMlp([0, 1, 2, 3].map((i) => ({ weight: w[2 * i], bias: w[2 * i + 1] })), h), [f64(rng, [B, T, D]), ...flat]);
    expect(r.ok, r.message).toBe(true);
  });

  it('time-gap modulation, legacy clamp on (scales inside and beyond ±5) and off', () => {
    for (const legacy of [true, false]) {
      const ada = lin(rng, 2 * D, 4 * D);
      // push some scale biases beyond ±5 (away from the kink): their gradient is 0 with the clamp
      for (const i of [0, 3]) ada.bias.data[2 * D + i] = i === 0 ? 9 : -9;
      const fc1 = lin(rng, 2 * D, 2 * D), fc2 = lin(rng, 2 * D, D);
      const r = gradcheck((u, e, aw, ab, w1, b1, w2, b2) => timeGapModulation({ ada: { weight: aw, bias: ab }, fc1: { weight: w1, bias: b1 }, fc2: { weight: w2, bias: b2 } }, u, e, legacy),
        [f64(rng, [B, T, 2 * D]), f64(rng, [B, 2 * D], 0.1), ada.weight, ada.bias, fc1.weight, fc1.bias, fc2.weight, fc2.bias]);
      expect(r.ok, `${legacy}: ${r.message}`).toBe(true);
    }
  });

  it('cross-space attention: q̃ + MHA(q̃, k̃, k̃) with one affine LayerNorm, wrt both sides and every weight', () => {
    const norm = { weight: f64(rng, [D], 0.3), bias: f64(rng, [D], 0.3) };
    norm.weight.data.forEach((v, i) => { norm.weight.data[i] = 1 + v; });
    const inProj = lin(rng, D, 3 * D), outProj = lin(rng, D, D);
    const r = gradcheck((q, kv, nw, nb, iw, ib, ow, ob) => crossSpaceAttention({ norm: { weight: nw, bias: nb }, inProj: { weight: iw, bias: ib }, outProj: { weight: ow, bias: ob } }, q, kv, 2),
      [f64(rng, [B, T, D]), f64(rng, [B, T, D]), norm.weight, norm.bias, inProj.weight, inProj.bias, outProj.weight, outProj.bias]);
    expect(r.ok, r.message).toBe(true);
    expect(() => crossSpaceAttention({ norm, inProj, outProj }, f64(rng, [B, T, D]), f64(rng, [B, T + 1, D]), 2)).toThrow(/share \(B, T, D\)/);
  });

  it('the L_acc step wrt x, ε and a (v is detached: its analytic gradient is 0, checked below)', () => {
    const t = [0.3, 0.8];
    const r = gradcheck((x, eps, a, v) => accelerationTerm(linear, x, eps, t, v, a), [f64(rng, [B, 1, 2, 2]), f64(rng, [B, 1, 2, 2]), f64(rng, [B, 1, 2, 2]), f64(rng, [B, 1, 2, 2])], { skip: [3] });
    expect(r.ok, r.message).toBe(true);
  });
});

describe('branch times', () => {
  const arb = fc.record({
    t1: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 6 }),
    K: fc.integer({ min: 1, max: 4 }), beta: fc.double({ min: 0, max: 0.5, noNaN: true }), sign: fc.constantFrom(1, -1), seed: fc.integer({ min: 0, max: 1e6 }),
  });

  it('in [0, 1], |gap| ≤ β, every gap of the batch of the batch\'s sign, β = 0 ⇒ all equal, clipping only at the ends', () => {
    fc.assert(fc.property(arb, ({ t1, K, beta, sign, seed }) => {
      const rng = new Rng(seed);
      const u = Array.from({ length: K - 1 }, () => rng.uniformArray(t1.length));
      const times = branchTimes(t1, sign, beta, u);
      expect(times.length).toBe(K);
      expect(Array.from(times[0])).toEqual(t1);
      for (let k = 1; k < K; k++) {
        for (let i = 0; i < t1.length; i++) {
          const g = times[k][i] - times[k - 1][i];
          expect(times[k][i]).toBeGreaterThanOrEqual(0);
          expect(times[k][i]).toBeLessThanOrEqual(1);
          expect(Math.abs(g)).toBeLessThanOrEqual(beta + 1e-15);
          expect(g * sign).toBeGreaterThanOrEqual(0);
          const free = times[k - 1][i] + sign * beta * u[k - 1][i];
          if (free >= 0 && free <= 1) expect(times[k][i]).toBe(free);
        }
      }
      const flat = branchTimes(t1, sign, 0, u);
      for (const t of flat) expect(Array.from(t)).toEqual(t1);
    }), { seed: 51, numRuns: 60 });
    expect(() => branchTimes([0.5], 0, 0.1, [])).toThrow(/sign must be \+1 or -1/);
  });

  it('the method draws one sign per batch from its stream, t_1 = the run\'s t, the same draws for the same stream', () => {
    const s = DeepFlowSection.parse({ branch_blocks: [1, 2], time_gap: 0.2 });
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), (seed) => {
      const t = new Rng(seed).uniformArray(5);
      const d = deepflow.draw!(s, { t } as never, { 'deepflow-gaps': new Rng(seed + 1) }, { encoderDim: null });
      const again = deepflow.draw!(s, { t } as never, { 'deepflow-gaps': new Rng(seed + 1) }, { encoderDim: null });
      expect(d.times.length).toBe(3);
      expect(Array.from(d.times[0])).toEqual(Array.from(t));
      expect(d.times.map((a: Float64Array) => Array.from(a))).toEqual(again.times.map((a: Float64Array) => Array.from(a)));
      const signs = new Set<number>();
      for (let k = 1; k < 3; k++) for (let i = 0; i < 5; i++) { const g = d.times[k][i] - d.times[k - 1][i]; if (g !== 0) signs.add(Math.sign(g)); }
      expect([...signs].every((v) => v === d.sign)).toBe(true);
    }), { seed: 52, numRuns: 20 });
  });
});

describe('DeepFlow SiT and losses', () => {
  const cfg = tinySiTConfig(3);
  const shape = (cuts: number[]) => ({ cuts, accHidden: 6, legacyScaling: true });
  const make = (seed: number, cuts = [1, 2]) => { const m = createDeepFlowSiT(cfg, shape(cuts), seed); perturb(m, seed + 1); return m; };
  const batch = (seed: number, K: number, beta = 0.2) => {
    const rng = new Rng(seed);
    const x = rng.normal([2, 1, 8, 8]), eps = rng.normal([2, 1, 8, 8]), t1 = rng.uniformArray(2, 0.1, 0.9);
    const times = branchTimes(t1, 1, beta, Array.from({ length: K - 1 }, () => rng.uniformArray(2)));
    return { x, eps, times };
  };

  it('L_acc reaches ACC_MLP, the acceleration head and the trunk but never the velocity heads; the last VeRA\'s refinement gets none', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1000 }), (seed) => {
      const model = make(seed).eval();
      const { x, eps, times } = batch(seed + 2, 3);
      zeroAllGrads(model);
      const o = model.forwardBranches(interpolate(linear, x, eps, times[0]), times, [1, 2]);
      backward(accelerationLoss(linear, x, eps, times, o.velocities, o.accelerations));
      const g = withGrad(model);
      expect(g.filter((n) => n.startsWith('final_layer.'))).toEqual([]);
      expect(g.filter((n) => n.startsWith('df_blocks.1.acc_norm.') || n.startsWith('df_blocks.1.cross_attention.') || n.startsWith('blocks.2.'))).toEqual([]);
      expect(g).toEqual(expect.arrayContaining([
        'df_blocks.0.acc_mlp.0.weight', 'df_blocks.1.acc_mlp.6.weight', 'final_acc_layer.linear.weight', 'final_acc_layer.adaLN_modulation.1.weight',
        'blocks.0.attn.qkv.weight', 'blocks.1.mlp.fc2.weight', 'df_blocks.0.cross_attention.multihead_attn.in_proj_weight', 'df_blocks.0.acc_norm.mlp.fc1.weight',
        'x_embedder.proj.weight', 't_embedder.mlp.0.weight', 'dt_embedder.mlp.0.weight',
      ]));
      // the velocities themselves receive no gradient from L_acc
      const leaf = (t: Tensor) => { const c = tensor(Array.from(t.data), t.shape); c.requiresGrad = true; return c; };
      const v = o.velocities.map(leaf), a = o.accelerations.map(leaf);
      backward(accelerationLoss(linear, x, eps, times, v, a));
      for (const t of v) expect(t.grad === null || t.grad.data.every((e) => e === 0)).toBe(true);
      for (const t of a) expect(t.grad!.data.some((e) => e !== 0)).toBe(true);
      // the deep supervision does reach the shared intermediate head
      zeroAllGrads(model);
      const o2 = model.forwardBranches(interpolate(linear, x, eps, times[0]), times, [1, 2]);
      backward(add(sum(mul(o2.velocities[0], o2.velocities[0])), sum(mul(o2.velocities[2], o2.velocities[2]))));
      expect(withGrad(model)).toEqual(expect.arrayContaining(['final_layer.0.linear.weight', 'final_layer.1.linear.weight', 'df_blocks.1.cross_attention.layer_norm.weight']));
    }), { seed: 61, numRuns: 4 });
  });

  it('L_acc is 0 at the exact velocity with a = 0, and at a = 2(x − x̂_0(v))/t² for any v; ≥ 0', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), (seed) => {
      const rng = new Rng(seed);
      const x = f64(rng, [2, 1, 2, 2]), eps = f64(rng, [2, 1, 2, 2]), v = f64(rng, [2, 1, 2, 2]);
      const t = rng.uniformArray(2, 0.05, 1);
      const exact = tensor(Array.from(eps.data, (e, i) => e - x.data[i]), eps.shape, 'float64');
      const zero = tensor(new Array(8).fill(0), [2, 1, 2, 2], 'float64');
      expect(accelerationTerm(linear, x, eps, t, exact, zero).data[0]).toBeLessThan(1e-24);
      const xt = interpolate(linear, x, eps, t);
      const a = tensor(Array.from(x.data, (xv, i) => { const tt = t[Math.floor(i / 4)]; return 2 * (xv - (xt.data[i] - tt * v.data[i])) / (tt * tt); }), x.shape, 'float64');
      expect(accelerationTerm(linear, x, eps, t, v, a).data[0]).toBeLessThan(1e-20);
      expect(accelerationTerm(linear, x, eps, t, v, zero).data[0]).toBeGreaterThanOrEqual(0);
    }), { seed: 62, numRuns: 30 });
  });

  it('at init v_k ≡ 0, a_k ≡ 0, so L_acc = Σ_k mean_b t_k²·mean(ε − x)²', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1000 }), (seed) => {
      const model = createDeepFlowSiT(cfg, shape([1, 2]), seed).eval();
      const { x, eps, times } = batch(seed + 5, 3, 0.3);
      const o = model.forwardBranches(interpolate(linear, x, eps, times[0]), times, [1, 2]);
      for (const t of [...o.velocities, ...o.accelerations]) expect(t.data.every((v) => v === 0)).toBe(true);
      const per = [0, 1].map((b) => { let s = 0; for (let i = 0; i < 64; i++) s += (eps.data[b * 64 + i] - x.data[b * 64 + i]) ** 2; return s / 64; });
      const expected = [0, 1].reduce((s, k) => s + (times[k][0] ** 2 * per[0] + times[k][1] ** 2 * per[1]) / 2, 0);
      expectClose('L_acc at init', accelerationLoss(linear, x, eps, times, o.velocities, o.accelerations).data, [expected], 1e-6, 1e-5);
    }), { seed: 63, numRuns: 5 });
  });

  it('K = 1 (no cut) is the SiT of the seed: same weights (final_layer → final_layer.1), same output; no extra terms', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1000 }), (seed) => {
      const df = createDeepFlowSiT(cfg, shape([]), seed), sit = createSiT(cfg, seed);
      perturb(df, seed + 1); perturb(sit, seed + 1); // same names in the same order but final_layer's
      const sd = df.stateDict(), ref = sit.stateDict();
      const rename = (k: string) => k.replace(/^final_layer\./, 'final_layer.1.');
      expect([...sd.keys()].sort()).toEqual([...ref.keys()].map(rename).sort());
      for (const [k, v] of ref) expect(Array.from(sd.get(rename(k))!.data), k).toEqual(Array.from(v.data));
      const rng = new Rng(seed + 2);
      const x = rng.normal([2, 1, 8, 8]), t = rng.uniformArray(2);
      expect(Array.from(df.eval().forward(x, t, [1, 2]).out.data)).toEqual(Array.from(sit.eval().forward(x, t, [1, 2]).out.data));
      const s = DeepFlowSection.parse({ branch_blocks: [] });
      const f = deepflow.backbone!.forward(s, df, { input: x, eps: x, t, y: new Int32Array([1, 2]), taps: [], feats: null, draws: { deepflow: { times: [t] } } }, linear, new Rng(1));
      expect(f.terms).toEqual({});
    }), { seed: 64, numRuns: 4 });
  });

  it('sampling\'s forward is v_K with every branch at t, of a plain SiT\'s shape; the partial forward equals the full forward; hiddenAfterBlock defers to it', () => {
    const model = make(7).eval();
    const rng = new Rng(8);
    const x = rng.normal([2, 1, 8, 8]), t = rng.uniformArray(2);
    const o = model.forward(x, t, [1, 2], { taps: [1, 2, 3] });
    expect(o.out.shape).toEqual([2, 1, 8, 8]);
    expect(Array.from(o.out.data)).toEqual(Array.from(model.forwardBranches(x, [t, t, t], [1, 2]).velocities[2].data));
    for (const k of [1, 2, 3]) {
      expect(Array.from(model.hiddenAfter(x, t, [1, 2], k).data), `block ${k}`).toEqual(Array.from(o.hidden.get(k)!.data));
      expect(Array.from(hiddenAfterBlock(model, x, t, [1, 2], k).data)).toEqual(Array.from(o.hidden.get(k)!.data));
    }
    // shifted branch times change the prediction (the time-gap embedding and c_k are used)
    const shifted = model.forwardBranches(x, [t, t.map((v) => v + 0.1), t.map((v) => v + 0.2)], [1, 2]).velocities[2];
    expect(Array.from(shifted.data)).not.toEqual(Array.from(o.out.data));
  });

  it('time convention at the boundary: x_{t_1} = (1 − t)·x + t·ε, every target ε − x (the official one, unchanged)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), (seed) => {
      const model = make(seed % 1000).eval();
      const { x, eps, times } = batch(seed, 3);
      const s = DeepFlowSection.parse({ branch_blocks: [1, 2], branch_weights: [0.2, 0.4], acc_weight: 0.7 });
      const f = deepflow.backbone!.forward(s, model, { input: x, eps, t: times[0], y: new Int32Array([3, 4]), taps: [2], feats: null, draws: { deepflow: { times } } }, linear, new Rng(1));
      expectClose('target ε − x', f.target.data, Array.from(eps.data, (e, i) => e - x.data[i]), 1e-6, 1e-6);
      const xt = tensor(Array.from(x.data, (v, i) => (1 - times[0][Math.floor(i / 64)]) * v + times[0][Math.floor(i / 64)] * eps.data[i]), [2, 1, 8, 8]);
      const direct = model.forwardBranches(xt, times, [3, 4], { taps: [2] });
      expectClose('v_K at x_{t_1}', f.out.data, direct.velocities[2].data, 1e-5, 1e-4);
      expectClose('hidden after the cut (h\')', f.hidden.get(2)!.data, direct.hidden.get(2)!.data, 1e-5, 1e-4);
      expect(Object.keys(f.terms).sort()).toEqual(['acc', 'ds_1', 'ds_2']);
      expect([f.terms.ds_1.weight, f.terms.ds_2.weight, f.terms.acc.weight]).toEqual([0.2, 0.4, 0.7]);
      expect(deepflow.logged!(s, { draws: { deepflow: { sign: -1 } } } as never)).toEqual({ gap_sign: -1 });
    }), { seed: 65, numRuns: 4 });
  });

  it('errors name the field and what was expected', () => {
    const spec = (depth: number) => ({ model: { depth }, methods: ['deepflow'] }) as never;
    expect(() => deepflow.check!(DeepFlowSection.parse({ branch_blocks: [2, 2] }), spec(4))).toThrow(/deepflow\.branch_blocks must be strictly increasing/);
    expect(() => deepflow.check!(DeepFlowSection.parse({ branch_blocks: [4] }), spec(4))).toThrow(/deepflow\.branch_blocks\[0\] is 4: expected a block index in 1\.\.3/);
    expect(() => deepflow.check!(DeepFlowSection.parse({ branch_blocks: [1, 2], branch_weights: [0.2] }), spec(4))).toThrow(/deepflow\.branch_weights has 1 weights but .* makes 2 intermediate branches/);
    expect(() => deepflow.check!(DeepFlowSection.parse({}), spec(1))).toThrow(/deepflow\.branch_blocks\[0\] is 0/);
    expect(() => DeepFlowSection.parse({ time_gap: 2 })).toThrow(/time_gap/);
    expect(() => DeepFlowSection.parse({ branch_blocks: [0] })).toThrow(/branch_blocks/);
    const m = make(1);
    expect(() => deepflow.backbone!.forward(DeepFlowSection.parse({ branch_blocks: [1, 2] }), m, { input: tensor(new Array(128).fill(0), [2, 1, 8, 8]), eps: tensor(new Array(128).fill(0), [2, 1, 8, 8]), t: new Float64Array(2), y: new Int32Array(2), taps: [], feats: null, draws: {} }, linear, new Rng(1)))
      .toThrow(/draws lack the 3 branch times/);
    expect(() => m.forwardBranches(tensor(new Array(128).fill(0), [2, 1, 8, 8]), [[0, 0]], [1, 2])).toThrow(/3 branches need 3 time arrays/);
    const w = make(1).stateDict();
    expect(() => deepflow.backbone!.fromWeights(DeepFlowSection.parse({ branch_blocks: [1], acc_hidden: 6 }), { spec: {} as never, config: cfg }, w)).toThrow(/weights hold 2 VeRA blocks .* makes 1 cuts/);
    expect(deepflow.backbone!.fromWeights(DeepFlowSection.parse({ branch_blocks: [1, 2], acc_hidden: 6 }), { spec: {} as never, config: cfg }, w)).toBeInstanceOf(DeepFlowSiT);
  });
});
