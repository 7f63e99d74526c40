// DeepFlow's SiT and losses (src/methods/deepflow) against a float64 PyTorch reference written from
// the method spec with torch's own nn.MultiheadAttention (test/fixtures/make_deepflow_fixture.py):
// the branch times (sign, β, clip at 1), every velocity v_k and acceleration a_k, every hidden state
// (h' after a cut), the sampler's call (all branches at t_1), the loss Σ w_k·ds_k + diff + λ·acc
// with its terms, and EVERY parameter gradient, 1e-5 relative (float32 here). The fixture's first
// VeRA has modulation scales above 5, so the legacy clamp and its zero gradient are exercised.
import { describe, expect, it } from 'vitest';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { add, backward, mul } from '../../src/autograd/index.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { parseSiTConfig } from '../../src/models/config.ts';
import { linear as linearPath, velocityLoss, interpolate, velocityTarget } from '../../src/diffusion/index.ts';
import { DeepFlowSiT } from '../../src/methods/deepflow/model.ts';
import { accelerationLoss, branchTimes } from '../../src/methods/deepflow/loss.ts';
import { expectClose } from '../kernels/expectClose.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/deepflow/deepflow.safetensors');
const RTOL = 1e-5;

/** |got − ref| ≤ RTOL·max(|ref|, max|ref over the tensor|) (see urepa.parity.test.ts). */
function expectParity(what: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  expectClose(what, got, ref, RTOL * scale, RTOL);
}

describe('DeepFlow parity with PyTorch', () => {
  it('branch times, velocities, accelerations, hidden states, loss terms and every gradient to 1e-5', () => {
    const { tensors, metadata } = readSafetensors(FIX);
    expect(metadata.format).toBe('diffactor-deepflow-parity');
    const get = (k: string): Tensor => { const v = tensors.get(k); if (!v) throw new Error(`fixture: no '${k}'`); return v; };
    const config = parseSiTConfig(JSON.parse(metadata.config));
    const cuts = JSON.parse(metadata.cuts) as number[], w = JSON.parse(metadata.branch_weights) as number[];
    const K = cuts.length + 1, accW = Number(metadata.acc_weight), beta = Number(metadata.beta);
    const model = new DeepFlowSiT(config, { cuts, accHidden: Number(metadata.acc_hidden), legacyScaling: true }, new Rng(1)).eval();
    model.loadStateDict(new Map([...tensors].filter(([n]) => n.startsWith('w.')).map(([n, v]) => [n.slice(2), v]))); // strict: the official names

    const t1 = get('in.t1').toArray(), y = get('in.y').toArray(), u = get('in.u');
    const B = t1.length;
    const times = branchTimes(t1, get('in.sign').data[0], beta, Array.from({ length: K - 1 }, (_, k) => u.data.subarray(k * B, (k + 1) * B)));
    expectParity('times', times.flatMap((t) => [...t]), get('out.times').data);
    expect(times[K - 1][2], 'the third sample clips at 1').toBe(1);

    const [x, eps] = ['in.x', 'in.eps'].map(get);
    const xt = interpolate(linearPath, x, eps, times[0]);
    const taps = Array.from({ length: config.depth }, (_, i) => i + 1);
    const o = model.forwardBranches(xt, times, y, { taps });
    for (let k = 0; k < K; k++) expectParity(`v_${k + 1}`, o.velocities[k].data, get(`out.v.${k + 1}`).data);
    for (let k = 0; k < K - 1; k++) expectParity(`a_${k + 1}`, o.accelerations[k].data, get(`out.a.${k + 1}`).data);
    for (const k of taps) expectParity(`hidden ${k}`, o.hidden.get(k)!.data, get(`out.hidden.${k}`).data);
    expectParity('sample call (every branch at t_1)', model.forward(xt, times[0], y).out.data, get('out.sample').data);

    const target = velocityTarget(linearPath, x, eps, times[0]);
    const ds = w.map((_, k) => velocityLoss(o.velocities[k], target).loss);
    const diff = velocityLoss(o.velocities[K - 1], target).loss;
    const acc = accelerationLoss(linearPath, x, eps, times, o.velocities, o.accelerations);
    let loss = add(diff, mul(acc, accW));
    ds.forEach((d, k) => { loss = add(loss, mul(d, w[k])); });
    ds.forEach((d, k) => expectParity(`ds_${k + 1}`, d.data, get(`out.ds.${k + 1}`).data));
    for (const [n, v] of [['diff', diff], ['acc', acc], ['loss', loss]] as const) expectParity(n, v.data, get(`out.${n}`).data);
    backward(loss);
    const params = model.namedParameters();
    const gradKeys = [...tensors.keys()].filter((n) => n.startsWith('grad.')).map((n) => n.slice(5)).sort();
    expect(params.map(([n]) => n).sort()).toEqual(gradKeys);
    for (const [n, p] of params) expectParity(`grad ${n}`, p.grad!.data, get(`grad.${n}`).data);
    // The clamp is active in the first VeRA: the clamped scale entries get no gradient through it.
    const ada = params.find(([n]) => n === 'df_blocks.0.acc_norm.adaLN_modulation.1.bias')![1];
    const d2 = 2 * config.hiddenSize;
    expect(Array.from(ada.grad!.data.subarray(d2, d2 + 3))).toEqual([0, 0, 0]);
  });
});
