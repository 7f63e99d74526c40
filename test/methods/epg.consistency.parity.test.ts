// EPG's consistency fine-tuning (src/methods/epg/consistency.ts, index.ts consistencyPairs) against a
// float64 PyTorch reference written from the same description (test/fixtures/make_epg_consistency_fixture.py;
// regenerate with `/usr/bin/python3 test/fixtures/make_epg_consistency_fixture.py`): ECT's pairs
// (t, r) from the normals at stage 2 (one clamped to t = r = σ_min, weight 0; one with r at σ_min),
// the boundary scalings, D_t and the target D_r, the weighted pseudo-Huber loss and its gradient in
// the network output F_t; and the official code's form ‖d‖²/sg√(‖d‖² + c²), whose gradient is twice ours.
import { describe, expect, it } from 'vitest';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { backward } from '../../src/autograd/index.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { veNoise } from '../../src/diffusion/ve.ts';
import { applyBoundary, cmScalings, consistencyObjective, ectWeights } from '../../src/methods/epg/consistency.ts';
import { EpgSection, consistencyPairs } from '../../src/methods/epg/index.ts';
import { expectClose } from '../kernels/expectClose.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/epg/epg-consistency.safetensors');
const RTOL = 1e-6;
const { tensors, metadata } = readSafetensors(FIX);
const get = (k: string): Tensor => { const v = tensors.get(k); if (!v) throw new Error(`fixture: no '${k}'`); return tensor(Array.from(v.data), v.shape, 'float64'); };

function expectParity(what: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  expect(got.length, what).toBe(ref.length);
  expectClose(what, got, ref, RTOL * scale, RTOL);
}

describe('EPG consistency fine-tuning: parity with PyTorch (float64)', () => {
  it('pairs, scalings, D_t, target, loss and its gradient; the official form’s gradient is twice ours', () => {
    expect(metadata.format).toBe('diffactor-epg-consistency-parity');
    const num = (k: string) => Number(metadata[k]);
    // stage 2 = δ 1 plus one after d0: k = step − 1 = 10 with d (10, 10)
    const s = EpgSection.parse({ stage: 'consistency', p_mean: num('p_mean'), p_std: num('p_std'), ect_q: num('q'), ect_k: num('k'), ect_b: num('b'), ect_d: [10, 10], ect_delta: 1, huber_c: num('c') });
    const pairs = consistencyPairs(s, 100, 11, get('in.n').data);
    expect(pairs.stage).toBe(num('stage'));
    const shift = num('shift'), sMin = s.sigma_min * shift;
    const t = pairs.t.map((v) => v * shift), r = pairs.r.map((v) => v * shift);
    expectParity('t', t, get('out.t').data);
    expectParity('r', r, get('out.r').data);
    expectParity('c_skip', Array.from(t, (v) => cmScalings(v, sMin).cSkip), get('out.cskip_t').data);
    expectParity('c_out', Array.from(t, (v) => cmScalings(v, sMin).cOut), get('out.cout_t').data);
    const x = get('in.x'), eps = get('in.eps'), fT = get('in.f_t');
    fT.requiresGrad = true;
    const dT = applyBoundary(veNoise(x, eps, t), fT, t, sMin);
    const dR = applyBoundary(veNoise(x, eps, r), get('in.f_r'), r, sMin);
    expectParity('D_t', dT.data, get('out.d_t').data);
    expectParity('D_r', dR.data, get('out.d_r').data);
    const w = ectWeights(t, r);
    expect(w[0]).toBe(0); // t = r = σ_min·shift
    const loss = consistencyObjective(dT, dR, w, s.huber_c);
    expectParity('loss', [loss.item()], get('out.loss').data);
    backward(loss);
    expectParity('dL/dF_t', fT.grad!.data, get('out.grad_f_t').data);
    expectParity('official dL/dF_t = 2·ours', Array.from(fT.grad!.data, (g) => 2 * g), get('out.grad_official_f_t').data);
  });
});
