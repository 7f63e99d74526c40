// EPG's networks and losses (src/methods/epg) against a float64 PyTorch reference written from the
// same description (test/fixtures/make_epg_fixture.py; regenerate with
// `/usr/bin/python3 test/fixtures/make_epg_fixture.py`): stage 1 — the encoder's e on the three
// noised batches, the projections, the symmetric contrastive and the consistency InfoNCE
// (pretrainLoss with the EMA target's projections given) and every online parameter's gradient;
// stage 2 — the x0 prediction D of the encoder + skip decoder (class embedding on CLS and in the
// adaLN condition, the null class included) and every parameter's gradient of mean(w·(D − x)²).
// The models run in float64 here too (the sinusoidal time token rounded to float32 on both sides,
// as models/embeddings.ts timestepFrequencies does) on the fixture's float32 weights and inputs;
// the reference values are stored as float32: 1e-6 relative to each tensor's scale (it holds at 1e-7).
import { describe, expect, it } from 'vitest';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { add, backward, mean, mul, sub } from '../../src/autograd/index.ts';
import { concat } from '../../src/autograd/index.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import type { Module } from '../../src/nn/module.ts';
import { parseSiTConfig } from '../../src/models/config.ts';
import { veNoise } from '../../src/diffusion/ve.ts';
import { EpgModel, EpgOnline } from '../../src/methods/epg/model.ts';
import { pretrainLoss } from '../../src/methods/epg/index.ts';
import { expectClose } from '../kernels/expectClose.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/epg/epg.safetensors');
const RTOL = 1e-6;

function expectParity(what: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  expect(got.length, what).toBe(ref.length);
  expectClose(what, got, ref, RTOL * scale, RTOL);
}

function toFloat64(m: Module): void {
  for (const [, t] of m.stateDict()) {
    const w = t as unknown as { data: Float64Array; dtype: string };
    w.data = Float64Array.from(t.data);
    w.dtype = 'float64';
  }
}

const { tensors, metadata } = readSafetensors(FIX);
const get = (k: string): Tensor => { const v = tensors.get(k); if (!v) throw new Error(`fixture: no '${k}'`); return tensor(Array.from(v.data), v.shape, 'float64'); };
const group = (prefix: string) => new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), tensor(Array.from(v.data), v.shape, 'float64')]));

describe('EPG parity with PyTorch (float64)', () => {
  const config = parseSiTConfig(JSON.parse(metadata.config));

  it('stage 1: e, projections, contrastive and consistency InfoNCE, every online gradient', () => {
    expect(metadata.format).toBe('diffactor-epg-parity');
    const online = new EpgOnline(config, Number(metadata.projector_dim), Number(metadata.projector_out), new Rng(1));
    toFloat64(online);
    online.loadStateDict(group('w1.'));
    const [sigma, sigmaNext, sigmaMin] = get('in.sigmas1').toArray();
    const x = get('in.x'), eps = get('in.eps'), t = concat([get('in.t1'), get('in.t2')], 0);
    const B = x.shape[0];
    const r = pretrainLoss(online, x, eps, get('in.v1'), get('in.v2'), { sigma, sigmaNext, sigmaMin }, Number(metadata.tau), () => t);
    expectParity('contrastive', [r.contrastive.item()], get('out.contrastive').data);
    expectParity('consistency', [r.consistency.item()], get('out.consistency').data);
    const sig = new Float64Array(3 * B).fill(sigmaMin).fill(sigma, 2 * B);
    const e = online.encoder.forward(concat([veNoise(get('in.v1'), eps, [sigmaMin, sigmaMin, sigmaMin]), veNoise(get('in.v2'), eps, [sigmaMin, sigmaMin, sigmaMin]), veNoise(x, eps, [sigma, sigma, sigma])], 0), sig).e;
    expectParity('e', e.data, get('out.e').data);
    online.zeroGrad();
    backward(add(r.contrastive, r.consistency));
    const grads = group('g1.');
    expect(grads.size).toBe(online.namedParameters().length);
    for (const [k, p] of online.namedParameters()) expectParity(`grad ${k}`, p.grad!.data, grads.get(k)!.data);
  });

  it('stage 2: D and every gradient of mean(w·(D − x)²)', () => {
    const m = new EpgModel(config, Number(metadata.decoder_depth), new Rng(2));
    toFloat64(m);
    m.loadStateDict(group('w2.'));
    m.eval();
    const x = get('in.x'), eps = get('in.eps'), sigmas = Float64Array.from(get('in.sigmas2').data), w = get('in.w');
    const y = Int32Array.from(get('in.y').data);
    const d = m.forward(veNoise(x, eps, sigmas), sigmas, y);
    expectParity('D', d.data, get('out.d').data);
    const diff = sub(d, x);
    const loss = mean(mul(mul(diff, diff), tensor(Array.from(w.data), [3, 1, 1, 1], 'float64')));
    expectParity('loss', [loss.item()], get('out.loss').data);
    m.zeroGrad();
    backward(loss);
    const grads = group('g2.');
    expect(grads.size).toBe(m.namedParameters().length);
    for (const [k, p] of m.namedParameters()) expectParity(`grad ${k}`, p.grad!.data, grads.get(k)!.data);
  });
});
