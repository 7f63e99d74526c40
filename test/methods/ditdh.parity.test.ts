// DiT^DH (src/methods/dit-dh/model.ts) against a float64 PyTorch reference written from the method
// spec (test/fixtures/make_ditdh_fixture.py) at a tiny size: the velocity, the body's hidden state
// after every block, the head's per-token condition s_tok, the loss mse(v̂, ε − x) and EVERY parameter
// gradient to 1e-5 of each tensor's scale (float32 here); the fixed buffers (Fourier W aside: drawn)
// equal ours (the sin-cos positions); and a finite-difference gradcheck in float64 of the head (the
// noisy tokens, s_tok and every element of every parameter).
import { describe, expect, it } from 'vitest';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { backward, gradcheck, mseLoss, mul, sub, sum } from '../../src/autograd/index.ts';
import { noGrad } from '../../src/autograd/tape.ts';
import { cast, type Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { parseSiTConfig } from '../../src/models/config.ts';
import { interpolate, linear as linearPath } from '../../src/diffusion/index.ts';
import { DiTDH, DiTDHHeadNet } from '../../src/methods/dit-dh/model.ts';
import { checkEveryParameter, expectParity, toFloat64 } from '../models/float64Checks.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/ditdh/ditdh.safetensors');

describe('DiT^DH parity with PyTorch', () => {
  const { tensors, metadata } = readSafetensors(FIX);
  const get = (k: string): Tensor => { const v = tensors.get(k); if (!v) throw new Error(`fixture: no '${k}'`); return cast(v, 'float32'); };
  const config = parseSiTConfig(JSON.parse(metadata.config));
  const head = JSON.parse(metadata.head);
  const weights = new Map([...tensors.keys()].filter((n) => n.startsWith('w.')).map((n) => [n.slice(2), get(n)]));

  it('the sin-cos position table is the reference\'s', () => {
    const m = new DiTDH(config, head, new Rng(1));
    expectParity('pos_embed', m.pos_embed.data, get('w.pos_embed').data);
  });

  it('velocity, body hidden states, s_tok, loss and every parameter gradient (t = 1 noise, target ε − x)', () => {
    expect(metadata.format).toBe('diffactor-ditdh-parity');
    const m = new DiTDH(config, head, new Rng(1)).eval();
    m.loadStateDict(weights); // strict: the names are ours and the fixture's
    const x = get('in.x'), eps = get('in.eps'), t = get('in.t').toArray(), y = get('in.y').toArray();
    const xt = interpolate(linearPath, x, eps, t);
    const taps = Array.from({ length: config.depth }, (_, i) => i + 1);
    const o = m.forward(xt, t, y, { taps });
    expectParity('pred', o.out.data, get('out.pred').data);
    for (const k of taps) expectParity(`hidden ${k}`, o.hidden.get(k)!.data, get(`out.hidden.${k}`).data);
    // hiddenAfter reads the same body.
    expectParity('hiddenAfter 1', m.hiddenAfter(xt, t, y, 1).data, get('out.hidden.1').data);
    const loss = mseLoss(o.out, sub(eps, x));
    expectParity('loss', loss.data, get('out.loss').data);
    backward(loss);
    const params = m.namedParameters();
    const gradKeys = [...tensors.keys()].filter((n) => n.startsWith('grad.')).map((n) => n.slice(5)).sort();
    expect(params.map(([n]) => n).sort()).toEqual(gradKeys);
    for (const [n, p] of params) expectParity(`grad ${n}`, p.grad!.data, get(`grad.${n}`).data);
  });

  it('the head alone on the reference s_tok gives the reference velocity', () => {
    const m = new DiTDH(config, head, new Rng(1)).eval();
    m.loadStateDict(weights);
    const x = get('in.x'), eps = get('in.eps'), t = get('in.t').toArray();
    const tokens = m.tokens(interpolate(linearPath, x, eps, t));
    const o = noGrad(() => m.head.forward(tokens, get('out.stok'))); // (B, N, C)
    const [B, C, g] = [x.shape[0], x.shape[1], x.shape[2]];
    const ref = get('out.pred').data, got = new Float32Array(ref.length);
    for (let b = 0; b < B; b++) for (let n = 0; n < g * g; n++) for (let c = 0; c < C; c++) got[(b * C + c) * g * g + n] = o.data[(b * g * g + n) * C + c];
    expectParity('head', got, ref);
  });
});

describe('DiT^DH head gradcheck (float64 finite differences)', () => {
  it('noisy tokens, s_tok and every element of every parameter', () => {
    const h = new DiTDHHeadNet(3, 8, { width: 8, depth: 1, heads: 2 }, 2, 2, new Rng(5));
    const r0 = new Rng(6);
    for (const [n, t] of h.namedParameters()) { const v = r0.child(n).normalArray(t.size, 0, 0.3); t.data.forEach((q, i) => { t.data[i] = q + v[i]; }); }
    toFloat64(h);
    const rng = new Rng(7);
    const tok = rng.normal([2, 4, 3], 0, 1, 'float64'), stok = rng.normal([2, 4, 8], 0, 1, 'float64');
    const r = gradcheck((a, b) => h.forward(a, b), [tok, stok]);
    expect(r.ok, r.message).toBe(true);
    const cot = rng.normal([2, 4, 3], 0, 1, 'float64');
    expect(checkEveryParameter(h, () => sum(mul(h.forward(tok, stok), cot)))).toBe(h.numParameters());
  });
});
