// U-REPA's U-shaped SiT and loss (src/methods/u-repa) against a float64 PyTorch reference written
// from the same reconstruction (test/fixtures/make_urepa_fixture.py): the output, every hidden
// state (full grid and 2×2 middle), the aligned tokens (projector then bilinear ×2; and nearest),
// the loss L_diff + λ·(L_tok + w·L_man) with its terms (and the token-level manifold value), and
// EVERY parameter gradient of the model and the projector, 1e-5 relative (float32 here).
import { describe, expect, it } from 'vitest';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { add, backward, mul, sub } from '../../src/autograd/index.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { Projector } from '../../src/models/projector.ts';
import { parseSiTConfig } from '../../src/models/config.ts';
import { velocityLoss } from '../../src/diffusion/index.ts';
import { USiT } from '../../src/methods/u-repa/model.ts';
import { alignedTokens, manifoldLoss, uRepaTokenLoss } from '../../src/methods/u-repa/loss.ts';
import { expectClose } from '../kernels/expectClose.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/urepa/urepa.safetensors');
const RTOL = 1e-5;

/**
 * |got − ref| ≤ RTOL·max(|ref|, max|ref over the tensor|): every element within 1e-5 of the
 * tensor's scale (float32 here rounds each element to ~6e-8 of its own magnitude per operation, so
 * entries that cancel to ~0 cannot be held to 1e-5 of themselves).
 */
function expectParity(what: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  expectClose(what, got, ref, RTOL * scale, RTOL);
}

describe('U-REPA parity with PyTorch', () => {
  it('forward, hidden states, aligned tokens, loss terms and every gradient to 1e-5', () => {
    const { tensors, metadata } = readSafetensors(FIX);
    expect(metadata.format).toBe('diffactor-urepa-parity');
    const get = (k: string): Tensor => { const v = tensors.get(k); if (!v) throw new Error(`fixture: no '${k}'`); return v; };
    const config = parseSiTConfig(metadata.config);
    const stage = Number(metadata.stage_blocks), mid = Number(metadata.mid_blocks);
    const lambda = Number(metadata.proj_coeff), w = Number(metadata.manifold_coeff);
    const weights = new Map([...tensors].filter(([n]) => n.startsWith('w.')).map(([n, v]) => [n.slice(2), v]));
    const model = new USiT(config, { stage, mid }, new Rng(1)).eval();
    const proj = new Projector(config.hiddenSize, Number(metadata.projector_dim), Number(metadata.encoder_dim), new Rng(2));
    model.loadStateDict(new Map([...weights].filter(([n]) => !n.startsWith('projectors.')))); // strict: the reference's names
    proj.loadStateDict(new Map([...weights].filter(([n]) => n.startsWith('projectors.0.')).map(([n, v]) => [n.slice('projectors.0.'.length), v])));

    const t = get('in.t').toArray(), y = get('in.y').toArray();
    const tb = tensor(t, [t.length, 1, 1, 1]);
    const [x, eps, yEnc] = ['in.x', 'in.eps', 'in.y_enc'].map(get);
    const xt = add(mul(x, sub(tensor([1]), tb)), mul(eps, tb));
    const taps = Array.from({ length: config.depth }, (_, i) => i + 1);
    const o = model.forward(xt, t, y, { taps });
    expectParity('velocity', o.out.data, get('out.pred').data);
    for (const k of taps) {
      expect(o.hidden.get(k)!.shape, `hidden ${k}`).toEqual(get(`out.hidden.${k}`).shape);
      expectParity(`hidden ${k}`, o.hidden.get(k)!.data, get(`out.hidden.${k}`).data);
    }
    const hMid = o.hidden.get(stage + mid)!;
    expectParity('u (nearest)', alignedTokens(proj, hMid, 'nearest').data, get('out.u_nearest').data);
    const u = alignedTokens(proj, hMid, 'bilinear');
    expectParity('u (bilinear)', u.data, get('out.u').data);

    const diff = velocityLoss(o.out, sub(eps, x)).loss;
    const tok = uRepaTokenLoss(u, yEnc);
    const man = manifoldLoss(u, yEnc, 'sample');
    expectParity('man_token', manifoldLoss(u, yEnc, 'token').data, get('out.man_token').data);
    const loss = add(diff, mul(add(tok, mul(man, w)), lambda));
    for (const [n, v] of [['diff', diff], ['tok', tok], ['man', man], ['loss', loss]] as const) expectParity(n, v.data, get(`out.${n}`).data);
    backward(loss);
    const params = [...model.namedParameters(), ...proj.namedParameters('projectors.0.')];
    const gradKeys = [...tensors.keys()].filter((n) => n.startsWith('grad.')).map((n) => n.slice(5)).sort();
    expect(params.map(([n]) => n).sort()).toEqual(gradKeys);
    for (const [n, p] of params) expectParity(`grad ${n}`, p.grad!.data, get(`grad.${n}`).data);
  });
});
