// The DDT model (src/methods/ddt/model.ts) against a float64 PyTorch reference written from the
// method spec (test/fixtures/make_ddt_fixture.py, ddt_reference.py) at a tiny size: the prediction,
// the encoder's state z, the hidden state after every block, the loss mse(pred, x − ε) and EVERY
// parameter gradient to 1e-5 relative (float32 here), the decoder on a reused state (encoder
// sharing), and the time-convention boundary: forward at diffactor's t = 1 − τ on the same x_t is
// −pred, and diffactor's velocity loss there is the same number with the same gradients.
import { describe, expect, it } from 'vitest';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { backward, mseLoss, sub } from '../../src/autograd/index.ts';
import { cast, type Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { parseSiTConfig } from '../../src/models/config.ts';
import { linear as linearPath, interpolate, velocityLoss, velocityTarget } from '../../src/diffusion/index.ts';
import { DDT } from '../../src/methods/ddt/model.ts';
import { expectClose } from '../kernels/expectClose.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/ddt/ddt.safetensors');

function expectParity(what: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  expectClose(what, got, ref, 1e-5 * scale, 1e-5);
}

describe('DDT parity with PyTorch', () => {
  const { tensors, metadata } = readSafetensors(FIX);
  const get = (k: string): Tensor => { const v = tensors.get(k); if (!v) throw new Error(`fixture: no '${k}'`); return cast(v, 'float32'); };
  const config = parseSiTConfig(JSON.parse(metadata.config));
  const E = Number(metadata.encoder_blocks);
  const load = (): DDT => {
    const m = new DDT(config, E, new Rng(1)).eval();
    m.loadStateDict(new Map([...tensors.keys()].filter((n) => n.startsWith('w.')).map((n) => [n.slice(2), get(n)]))); // strict: official names
    return m;
  };
  const x = get('in.x'), eps = get('in.eps'), y = get('in.y').toArray();
  const tau = get('in.tau').toArray(), tau2 = get('in.tau2').toArray();
  const xtau = (tt: number[]): Tensor => interpolate(linearPath, x, eps, tt.map((v) => 1 - v)); // τ·x + (1−τ)·ε = diffactor's x_t at t = 1 − τ

  it('prediction, state, every hidden state, loss and every parameter gradient in DDT time', () => {
    expect(metadata.format).toBe('diffactor-ddt-parity');
    const m = load();
    const taps = Array.from({ length: config.depth }, (_, i) => i + 1);
    const o = m.forwardDDT(xtau(tau), tau, y, { taps });
    expectParity('pred', o.out.data, get('out.pred').data);
    expectParity('state', o.state.data, get('out.state').data);
    for (const k of taps) expectParity(`hidden ${k}`, o.hidden.get(k)!.data, get(`out.hidden.${k}`).data);
    const loss = mseLoss(o.out, sub(x, eps));
    expectParity('loss', loss.data, get('out.loss').data);
    backward(loss);
    const params = m.namedParameters();
    const gradKeys = [...tensors.keys()].filter((n) => n.startsWith('grad.')).map((n) => n.slice(5)).sort();
    expect(params.map(([n]) => n).sort()).toEqual(gradKeys);
    for (const [n, p] of params) expectParity(`grad ${n}`, p.grad!.data, get(`grad.${n}`).data);
  });

  it('the decoder on a state computed at another time (encoder sharing)', () => {
    const m = load();
    const state = m.forwardDDT(xtau(tau), tau, y).state;
    expectParity('shared', m.forwardDDT(xtau(tau2), tau2, y, { state }).out.data, get('out.shared').data);
  });

  it('the boundary: forward at t = 1 − τ returns −pred, and the velocity loss (target ε − x) is the same with the same gradients', () => {
    const m = load();
    const t = tau.map((v) => 1 - v);
    const o = m.forward(xtau(tau), t, y);
    const neg = get('out.pred').toArray().map((v) => -v);
    expectParity('−pred', o.out.data, neg);
    const { loss } = velocityLoss(o.out, velocityTarget(linearPath, x, eps, t));
    expectParity('loss', loss.data, get('out.loss').data);
    backward(loss);
    for (const [n, p] of m.namedParameters()) expectParity(`grad ${n}`, p.grad!.data, get(`grad.${n}`).data);
  });
});
