// ReDi (src/methods/redi) against numpy / PyTorch references written in ReDi's own time convention
// (t = 1 data; test/fixtures/make_redi_fixture.py): the float64 feature statistics and PCA
// against numpy's eigh, and the whole joint step — encoder tokens → PCA channels → bilinear to
// the image grid → [x ; z] noised at t_redi (through diffactor's t = 1 − t_redi) → the joint SiT
// → the split loss and EVERY parameter gradient, and representation guidance — 1e-5 relative.
import { describe, expect, it } from 'vitest';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { backward, upsampleBilinear } from '../../src/autograd/index.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { parseSiTConfig } from '../../src/models/config.ts';
import { interpolantByName } from '../../src/diffusion/index.ts';
import { RediSiT } from '../../src/methods/redi/model.ts';
import { fitFeaturePca } from '../../src/methods/redi/pca.ts';
import { rediLoss, rediLossParts } from '../../src/methods/redi/loss.ts';
import { fromRediTime, fromRediVelocity } from '../../src/methods/redi/time.ts';
import { jointPair } from '../../src/methods/redi/index.ts';
import { expectClose } from '../kernels/expectClose.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/redi/redi.safetensors');
const RTOL = 1e-5;

/** |got − ref| ≤ RTOL·max(|ref|, max|ref| over the tensor), as the other parity tests. */
function expectParity(what: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  expect(got.length, `${what}: length`).toBe(ref.length);
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  expectClose(what, got, ref, RTOL * scale, RTOL);
}

describe('ReDi parity with numpy / PyTorch', () => {
  const { tensors, metadata } = readSafetensors(FIX);
  const get = (k: string): Tensor => { const v = tensors.get(k); if (!v) throw new Error(`fixture: no '${k}'`); return v; };

  it('the feature statistics and the PCA (float64) equal numpy\'s eigh to 1e-5', () => {
    expect(metadata.format).toBe('diffactor-redi-parity');
    const tok = get('pca.tokens');
    const [rows, d] = tok.shape;
    const p = fitFeaturePca(tok.data, rows, d);
    expectParity('feat_mean', p.featMean, get('pca.feat_mean').data);
    expectParity('feat_std', p.featStd, get('pca.feat_std').data);
    expectParity('pca mean', p.pcaMean, get('pca.mean').data);
    expectParity('variances', p.variances, get('pca.variances').data);
    expectParity('components', p.components, get('pca.components').data);
  });

  it('joint state, velocity, split loss, every gradient and RG in ReDi\'s convention, to 1e-5', () => {
    const config = parseSiTConfig(metadata.config);
    const r = Number(metadata.rank), d = Number(metadata.encoder_dim), lambda = Number(metadata.feature_weight);
    const model = new RediSiT(config, r, d, new Rng(1)).eval();
    model.loadStateDict(new Map([...tensors].filter(([n]) => n.startsWith('w.')).map(([n, v]) => [n.slice(2), v]))); // strict: the reference's names
    const C = config.inChannels;
    const [x, eps, epsZ, yEnc] = ['in.x', 'in.eps', 'in.eps_z', 'in.y_enc'].map(get);
    const t = Float64Array.from(get('in.t_redi').toArray(), fromRediTime); // the boundary
    const y = get('in.y').toArray();
    const [B, , H, W] = x.shape;

    expectParity('z (PCA channels, bilinear to the image grid)', upsampleBilinear(model.pca.project(yEnc), { size: [H, W] }).data, get('out.z').data);
    const { xt, target } = jointPair(model, { input: x, eps, t, feats: { patch: yEnc, cls: tensor(new Float32Array(B * d), [B, d]) }, draws: { redi: { dropped: false, epsZ } } }, interpolantByName('linear'));
    expectParity('x_t (t = 1 − t_redi)', xt.data, get('out.xt').data);
    expectParity('target (−u: ReDi\'s x − ε negated)', target.data, fromRediVelocity(get('out.u').data));

    const o = model.forward(xt, t, y);
    expectParity('velocity', o.out.data, get('out.pred').data);
    const parts = rediLossParts(o.out, target, C);
    expectParity('image part', parts.image.data, get('out.image').data);
    expectParity('feature part', parts.feature.data, get('out.feature').data);
    const loss = rediLoss(o.out, target, C, lambda);
    expectParity('loss', loss.data, get('out.loss').data);
    backward(loss);
    const params = model.namedParameters();
    const gradKeys = [...tensors.keys()].filter((n) => n.startsWith('grad.')).map((n) => n.slice(5)).sort();
    expect(params.map(([n]) => n).sort()).toEqual(gradKeys);
    for (const [n, p] of params) expectParity(`grad ${n}`, p.grad!.data, get(`grad.${n}`).data);

    const tt = tensor(t, [B]), yt = tensor(y, [B]);
    expectParity('prediction with the features zeroed', model.forward(model.featuresZeroed(xt), t, y).out.data, get('out.pred_uncond').data);
    model.rgScale = Number(metadata.rg_scale);
    expectParity('representation guidance', model.samplingVelocity(xt, tt, yt).data, get('out.rg').data);
  });
});
