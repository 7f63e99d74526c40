// SVG's new pieces against a float64 PyTorch reference written from the method spec
// (test/fixtures/make_svg_fixture.py; methods-b §6): the distribution matching (scalar statistics,
// unbiased std, detached — so the residual's gradient is the affine map's), the per-sample masking
// with the learnt vector, and SVG's DiT (the SiT with q/k-norm, SVG's t = 1-data convention converted
// at the boundary: ours at diffactor time 1 − t is −v of the reference) — output, loss and every
// parameter gradient. Then finite-difference gradchecks in float64: the matching's map (statistics
// held at the base point, as the detach makes them constants), the masking (both inputs), and the
// q/k-norm attention (input and every element of every parameter).
import { describe, expect, it } from 'vitest';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { backward, gradcheck, mseLoss, mul, sub, sum } from '../../src/autograd/index.ts';
import { noGrad } from '../../src/autograd/tape.ts';
import { cast, type Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import type { Module } from '../../src/nn/module.ts';
import { Attention } from '../../src/nn/attention.ts';
import { parseSiTConfig } from '../../src/models/config.ts';
import { interpolate, linear as linearPath } from '../../src/diffusion/index.ts';
import { channelMeanStd, maskResidual, matchDistribution, matchWithStats } from '../../src/methods/svg/matching.ts';
import { SvgDiT } from '../../src/methods/svg-dit/model.ts';
import { expectClose } from '../kernels/expectClose.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/svg/svg.safetensors');

/** Within 1e-5 of the tensor's scale; `floor` for tensors that are 0 in exact arithmetic (k_norm.bias: softmax ignores a shift of every logit of a row). */
function expectParity(what: string, got: ArrayLike<number>, ref: ArrayLike<number>, floor = 0): void {
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  expectClose(what, got, ref, Math.max(1e-5 * scale, floor), 1e-5);
}

describe('SVG parity with PyTorch (float64 reference)', () => {
  const { tensors, metadata } = readSafetensors(FIX);
  const get = (k: string, dtype: 'float32' | 'float64' = 'float32'): Tensor => { const v = tensors.get(k); if (!v) throw new Error(`fixture: no '${k}'`); return cast(v, dtype); };

  it('distribution matching: output and the residual\'s gradient (statistics detached)', () => {
    expect(metadata.format).toBe('diffactor-svg-parity');
    const hEnc = get('match.h_enc'), hRes = get('match.h_res');
    hRes.requiresGrad = true;
    const out = matchDistribution(hEnc, hRes);
    expectParity('match.out', out.data, get('match.out').data);
    backward(sum(mul(out, get('match.w'))));
    expectParity('match.grad_res', hRes.grad!.data, get('match.grad_res').data);
  });

  it('masking: output and the gradients of h_res and the mask vector', () => {
    const h = get('mask.h'), tok = get('mask.token');
    h.requiresGrad = true; tok.requiresGrad = true;
    const out = maskResidual(h, tok, get('mask.flags').data);
    expectParity('mask.out', out.data, get('mask.out').data);
    backward(sum(mul(out, get('mask.w'))));
    expectParity('mask.grad_h', h.grad!.data, get('mask.grad_h').data);
    expectParity('mask.grad_token', tok.grad!.data, get('mask.grad_token').data);
  });

  it('SVG\'s DiT (q/k-norm): −v at diffactor time 1 − t, the loss and every parameter gradient', () => {
    const config = parseSiTConfig(JSON.parse(metadata.config));
    const m = new SvgDiT(config, new Rng(1)).eval();
    m.loadStateDict(new Map([...tensors.keys()].filter((n) => n.startsWith('dit.w.')).map((n) => [n.slice(6), get(n)]))); // strict
    const x = get('dit.x'), eps = get('dit.eps'), tSvg = get('dit.t').toArray(), y = get('dit.y').toArray();
    const t = tSvg.map((v) => 1 - v);
    const xt = interpolate(linearPath, x, eps, t); // (1 − t)·x + t·ε = SVG's (1 − t_svg)·ε + t_svg·x
    const o = m.forward(xt, t, y);
    expectParity('velocity (ε − x side)', o.out.data, get('dit.v').data.map((v) => -v));
    const loss = mseLoss(o.out, sub(eps, x)); // = mse(v_svg, x − ε)
    expectParity('loss', loss.data, get('dit.loss').data);
    backward(loss);
    const params = m.namedParameters();
    const gradKeys = [...tensors.keys()].filter((n) => n.startsWith('dit.grad.')).map((n) => n.slice(9)).sort();
    expect(params.map(([n]) => n).sort()).toEqual(gradKeys);
    for (const [n, p] of params) expectParity(`grad ${n}`, p.grad!.data, get(`dit.grad.${n}`).data, 1e-8);
    // The evaluator's hidden state reads the same network at SVG's time.
    const taps = m.forward(xt, t, y, { taps: [1] }).hidden.get(1)!;
    expectParity('hiddenAfter 1', m.hiddenAfter(xt, t, y, 1).data, taps.data);
  });
});

/** Test only: float64 storage for every parameter and buffer (same values). */
function toFloat64(mod: Module): void {
  for (const [, t] of mod.stateDict()) {
    const w = t as unknown as { data: Float64Array; dtype: string };
    w.data = Float64Array.from(t.data);
    w.dtype = 'float64';
  }
}

/** Central differences of sum(cot ⊙ f()) in every element of every parameter of `mod` against backward. */
function expectParamGradcheck(mod: Module, f: () => Tensor, cot: Tensor): void {
  const lossOf = (): number => noGrad(() => sum(mul(f(), cot)).item());
  mod.zeroGrad();
  backward(sum(mul(f(), cot)));
  const eps = 1e-6;
  let checked = 0;
  for (const [n, t] of mod.namedParameters()) {
    const g = t.grad!.data;
    for (let j = 0; j < t.size; j++) {
      const old = t.data[j];
      t.data[j] = old + eps; const lp = lossOf();
      t.data[j] = old - eps; const lm = lossOf();
      t.data[j] = old;
      const num = (lp - lm) / (2 * eps);
      expect(Math.abs(num - g[j]), `${n}[${j}]: analytic ${g[j]} vs numeric ${num}`).toBeLessThan(1e-6 + 1e-5 * Math.abs(num));
      checked++;
    }
  }
  expect(checked).toBe(mod.numParameters());
}

describe('SVG gradchecks (float64 finite differences)', () => {
  const rng = new Rng(11);

  it('distribution matching: the affine map with the statistics of the base point', () => {
    const hEnc = rng.normal([2, 5, 6], 1, 2, 'float64'), hRes = rng.normal([2, 5, 3], -0.5, 0.3, 'float64');
    const enc = channelMeanStd(hEnc), res = channelMeanStd(hRes);
    const r = gradcheck((h) => matchWithStats(h, enc, res), [hRes]);
    expect(r.ok, r.message).toBe(true);
    // And matchDistribution is that map at its own statistics.
    expect(Array.from(matchDistribution(hEnc, hRes).data)).toEqual(Array.from(matchWithStats(hRes, enc, res).data));
  });

  it('masking: h_res and the mask vector', () => {
    const h = rng.normal([3, 4, 2], 0, 1, 'float64'), tok = rng.normal([2], 0, 1, 'float64');
    const r = gradcheck((a, b) => maskResidual(a, b, [1, 0, 1]), [h, tok]);
    expect(r.ok, r.message).toBe(true);
  });

  it('q/k-norm attention: the input and every element of every parameter', () => {
    const a = new Attention(8, 2, new Rng(5), { qkvBias: true, qkNorm: true });
    const r0 = new Rng(6);
    for (const [n, t] of a.namedParameters()) { const v = r0.child(n).normalArray(t.size, 0, 0.3); t.data.forEach((q, i) => { t.data[i] = q + v[i]; }); }
    expect(a.namedParameters().map(([n]) => n)).toEqual(expect.arrayContaining(['q_norm.weight', 'q_norm.bias', 'k_norm.weight', 'k_norm.bias']));
    toFloat64(a);
    const x = rng.normal([2, 3, 8], 0, 1, 'float64');
    const r = gradcheck((v) => a.forward(v), [x]);
    expect(r.ok, r.message).toBe(true);
    expectParamGradcheck(a, () => a.forward(x), rng.normal([2, 3, 8], 0, 1, 'float64'));
  });

  it('without qkNorm the attention has no norms (the plain SiT is unchanged)', () => {
    const a = new Attention(8, 2, new Rng(5), { qkvBias: true });
    expect(a.namedParameters().map(([n]) => n)).toEqual(['qkv.weight', 'qkv.bias', 'proj.weight', 'proj.bias']);
  });
});
