// UniFlow's pieces (src/methods/uniflow) against a float64 PyTorch reference written from the
// formulas (test/fixtures/make_uniflow_fixture.py): the whole pixel flow decoder (z, c, v, the
// one-step decode, the gradient of the tokens, of x_t and of EVERY parameter), one GTB alone, and the
// adaptive self-distillation (α_l, w_l, L_dist, the gradient to the student's states), to 1e-5 of
// each tensor's scale in float32; and finite-difference gradchecks in float64 of the GTB, the flow
// MLP and the whole decoder (every input and every element of every parameter) and of L_dist.
import { describe, expect, it } from 'vitest';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { backward, gradcheck, mul, sum } from '../../src/autograd/index.ts';
import { noGrad } from '../../src/autograd/tape.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { cast, type Tensor } from '../../src/tensor/tensor.ts';
import type { Module } from '../../src/nn/module.ts';
import { rope2dAngles } from '../../src/autograd/ops/rope.ts';
import { FlowMlp, GlobalBlock, PixelFlowDecoder, type PixelFlowConfig } from '../../src/methods/uniflow/decoder.ts';
import { alignmentPenalty, distillLoss } from '../../src/methods/uniflow/distill.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { checkEveryParameter, expectParity, toFloat64 } from '../models/float64Checks.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/uniflow/uniflow.safetensors');
const fx = readSafetensors(FIX);
const get = (k: string): Tensor => { const v = fx.tensors.get(k); if (!v) throw new Error(`fixture: no '${k}'`); return v; };
const weights = (prefix: string): Map<string, Tensor> => new Map([...fx.tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));

const m = fx.metadata;
const decConfig = (): PixelFlowConfig => ({
  tokenDim: Number(m.token_dim), grid: Number(m.grid), patchSize: Number(m.patch), channels: Number(m.channels), latentChannels: Number(m.latent_channels),
  width: Number(m.width), heads: Number(m.heads), gtbDepth: Number(m.gtb_depth), mlpRatio: Number(m.mlp_ratio), flowWidth: Number(m.flow_width), flowDepth: Number(m.flow_depth),
});

describe('UniFlow parity with PyTorch (float64 reference)', () => {
  it('the decoder: z, c, v, one-step decode, gradients of tokens, x_t and every parameter', () => {
    expect(m.format).toBe('diffactor-uniflow-parity');
    const dec = new PixelFlowDecoder(decConfig(), new Rng(0));
    expectParity('pos_embed (sin-cos)', dec.pos_embed.data, get('dec.pos_embed').data);
    dec.loadStateDict(new Map([...weights('dec.w.'), ['pos_embed', get('dec.pos_embed')]])); // strict: the reference's names
    const tok = get('dec.in.tokens').requireGrad(), xt = get('dec.in.xt').requireGrad(), t = get('dec.in.t').toArray();
    const z = dec.latent(tok);
    expectParity('z', z.data, get('dec.out.z').data);
    const c = dec.condition(z);
    expectParity('c', c.data, get('dec.out.c').data);
    const v = dec.velocity(xt, t, c);
    expectParity('v', v.data, get('dec.out.v').data);
    backward(sum(mul(v, get('dec.in.cot'))));
    expectParity('grad tokens', tok.grad!.data, get('dec.grad.tokens').data);
    expectParity('grad x_t', xt.grad!.data, get('dec.grad.xt').data);
    const params = dec.namedParameters();
    expect(params.length).toBe(weights('dec.grad.').size - 2); // all but tokens and x_t
    for (const [n, p] of params) expectParity(`grad ${n}`, p.grad!.data, get(`dec.grad.${n}`).data);
    const one = noGrad(() => dec.decode(get('dec.out.c'), get('dec.in.eps'), 1));
    expectParity('one-step decode', one.data, get('dec.out.one_step').data);
  });

  it('one GTB: output and every gradient', () => {
    const w = Number(m.width), heads = Number(m.heads), g = Number(m.grid);
    const blk = new GlobalBlock(w, heads, Number(m.mlp_ratio), new Rng(0));
    blk.loadStateDict(weights('gtb.w.'));
    const x = get('gtb.in.x').requireGrad();
    const y = blk.forward(x, rope2dAngles(g, g, w / heads));
    expectParity('gtb out', y.data, get('gtb.out').data);
    backward(sum(mul(y, get('gtb.in.cot'))));
    expectParity('gtb grad x', x.grad!.data, get('gtb.grad.x').data);
    for (const [n, p] of blk.namedParameters()) expectParity(`gtb grad ${n}`, p.grad!.data, get(`gtb.grad.${n}`).data);
  });

  it('the distillation: α_l, w_l, L_dist and its gradient to the student states', () => {
    const hu = [0, 1, 2].map((i) => get(`dist.in.hu.${i}`).requireGrad()), ht = [0, 1, 2].map((i) => get(`dist.in.ht.${i}`));
    const d = distillLoss(hu, ht, Number(m.beta));
    expectParity('alpha', d.alphas, get('dist.out.alpha').data);
    expectParity('w', d.weights, get('dist.out.w').data);
    expectParity('loss', [d.loss.item()], get('dist.out.loss').data);
    backward(d.loss);
    hu.forEach((h, i) => expectParity(`grad hu ${i}`, h.grad!.data, get(`dist.grad.hu.${i}`).data));
  });
});

function randomize(mod: Module, seed: number): void {
  const r = new Rng(seed);
  for (const [n, t] of mod.namedParameters()) { const v = r.child(n).normalArray(t.size, 0, 0.3); t.data.forEach((q, i) => { t.data[i] = q + v[i]; }); }
}

describe('UniFlow gradchecks (float64 finite differences)', () => {
  const small: PixelFlowConfig = { tokenDim: 3, grid: 2, patchSize: 2, channels: 1, latentChannels: 2, width: 8, heads: 2, gtbDepth: 1, mlpRatio: 1, flowWidth: 4, flowDepth: 1 };

  it('GTB: input and every parameter', () => {
    const blk = new GlobalBlock(8, 2, 1, new Rng(1));
    randomize(blk, 2);
    toFloat64(blk);
    const rng = new Rng(3), ang = rope2dAngles(2, 2, 4);
    const x = rng.normal([2, 4, 8], 0, 1, 'float64');
    const r = gradcheck((xx) => blk.forward(xx, ang), [x]);
    expect(r.ok, r.message).toBe(true);
    const cot = rng.normal([2, 4, 8], 0, 1, 'float64');
    expect(checkEveryParameter(blk, () => sum(mul(blk.forward(x, ang), cot)))).toBe(blk.numParameters());
  });

  it('flow MLP: x_t, c and every parameter (t is data)', () => {
    const f = new FlowMlp(4, 6, 5, 2, new Rng(4));
    randomize(f, 5);
    toFloat64(f);
    const rng = new Rng(6), t = rng.uniformArray(3);
    const xt = rng.normal([3, 4], 0, 1, 'float64'), c = rng.normal([3, 6], 0, 1, 'float64');
    const r = gradcheck((a, b) => f.forward(a, t, b), [xt, c]);
    expect(r.ok, r.message).toBe(true);
    const cot = rng.normal([3, 4], 0, 1, 'float64');
    expect(checkEveryParameter(f, () => sum(mul(f.forward(xt, t, c), cot)))).toBe(f.numParameters());
  });

  it('the whole decoder: tokens, x_t and every parameter', () => {
    const dec = new PixelFlowDecoder(small, new Rng(7));
    randomize(dec, 8);
    toFloat64(dec);
    const rng = new Rng(9), t = rng.uniformArray(2 * 4);
    const tok = rng.normal([2, 4, 3], 0, 1, 'float64'), xt = rng.normal([2, 1, 4, 4], 0, 1, 'float64');
    const run = (a: Tensor, b: Tensor): Tensor => dec.velocity(b, t, dec.condition(dec.latent(a)));
    const r = gradcheck(run, [tok, xt]);
    expect(r.ok, r.message).toBe(true);
    const cot = rng.normal([2, 1, 4, 4], 0, 1, 'float64');
    expect(checkEveryParameter(dec, () => sum(mul(run(tok, xt), cot)))).toBe(dec.numParameters());
  });

  it('α_l passes gradcheck; L_dist\'s gradient is Σ w_l ∇α_l with w held (stop-gradient)', () => {
    const rng = new Rng(10);
    const ht = [rng.normal([2, 3, 4], 0, 1, 'float64'), rng.normal([2, 3, 4], 0, 1, 'float64')];
    const hu = [rng.normal([2, 3, 4], 0, 1, 'float64'), rng.normal([2, 3, 4], 0, 1, 'float64')];
    const r = gradcheck((a) => alignmentPenalty(a, ht[0]), [hu[0]]);
    expect(r.ok, r.message).toBe(true);
    const xs = hu.map((h) => cast(h, 'float64').requireGrad());
    const d = distillLoss(xs, ht);
    backward(d.loss);
    xs.forEach((x, l) => {
      const y = cast(hu[l], 'float64').requireGrad();
      backward(alignmentPenalty(y, ht[l]));
      expectClose(`grad layer ${l + 1}`, x.grad!.data, Array.from(y.grad!.data, (g) => d.weights[l] * g), 1e-12, 1e-10);
    });
  });
});
