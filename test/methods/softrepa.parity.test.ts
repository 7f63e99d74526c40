// SoftREPA's caption-conditioned SiT and contrastive loss (src/methods/softrepa) against a float64
// PyTorch reference written from the same description (test/fixtures/make_softrepa_fixture.py):
// the plain forward (output, image tokens after every block) of each image under its caption, the
// B² pair errors E, the logits s·exp(−E/τ), the cross-entropy, the dweight term, and EVERY
// parameter gradient (all trainable: the stage-1 view), 1e-5 relative (float32 here); then with
// the base frozen (stage 2) only dc_tokens receives a gradient, the same one.
import { describe, expect, it } from 'vitest';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { add, backward, indexSelect, mean, mul, reshape } from '../../src/autograd/index.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { parseSiTConfig } from '../../src/models/config.ts';
import { interpolantByName } from '../../src/diffusion/index.ts';
import { CaptionVocab } from '../../src/methods/softrepa/captions.ts';
import { CaptionSiT } from '../../src/methods/softrepa/model.ts';
import { pairErrors, pairIndices, sharedNoising, softRepaLogits, softRepaLoss } from '../../src/methods/softrepa/loss.ts';
import { expectClose } from '../kernels/expectClose.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/softrepa/softrepa.safetensors');
const RTOL = 1e-5;

/** |got − ref| ≤ RTOL·max(|ref|, max|ref over the tensor|), as the U-REPA parity test. */
function expectParity(what: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  expectClose(what, got, ref, RTOL * scale, RTOL);
}

function load() {
  const { tensors, metadata } = readSafetensors(FIX);
  expect(metadata.format).toBe('diffactor-softrepa-parity');
  const get = (k: string): Tensor => { const v = tensors.get(k); if (!v) throw new Error(`fixture: no '${k}'`); return v; };
  const config = parseSiTConfig(metadata.config);
  const vocab = new CaptionVocab(JSON.parse(metadata.class_names), Number(metadata.max_tokens));
  expect(vocab.size).toBe(Number(metadata.vocab));
  const model = new CaptionSiT(config, { vocab, textDim: Number(metadata.text_dim), soft: { layers: Number(metadata.soft_layers), tokens: Number(metadata.soft_tokens) } }, new Rng(1)).eval();
  model.loadStateDict(new Map([...tensors].filter(([n]) => n.startsWith('w.')).map(([n, v]) => [n.slice(2), v]))); // strict: the reference's names
  const s = Number(metadata.scale), tau = Number(metadata.temperature), dweight = Number(metadata.dweight);
  return { tensors, get, model, config, s, tau, dweight };
}

/** The fixture's loss on the model: the plain forward, then the B² pairs; everything compared. */
function lossOf(f: ReturnType<typeof load>): Tensor {
  const { get, model, s, tau, dweight } = f;
  const x = get('in.x'), ids = Int32Array.from(get('in.ids').data), y = Array.from(get('in.y').data);
  const B = x.shape[0], L = ids.length / B;
  const { xt, target, t } = sharedNoising(interpolantByName('linear'), x, get('in.eps'), get('in.t').data);
  const taps = [1, 2, 3];
  const o = model.forward(xt, t, y, { captions: ids, taps });
  expectParity('velocity', o.out.data, get('out.pred').data);
  for (const k of taps) expectParity(`hidden ${k}`, o.hidden.get(k)!.data, get(`out.hidden.${k}`).data);
  const { image, caption } = pairIndices(B);
  const pairIds = new Int32Array(B * B * L);
  caption.forEach((j, k) => pairIds.set(ids.subarray(j * L, (j + 1) * L), k * L));
  const v = model.forward(indexSelect(xt, 0, image), new Float64Array(B * B).fill(t[0]), Array.from(caption, (j) => y[j]), { captions: pairIds }).out;
  const e = pairErrors(v, target);
  expectParity('E', e.data, get('out.E').data);
  expectParity('logits', softRepaLogits(e, s, tau).data, get('out.logits').data);
  const ce = softRepaLoss(e, s, tau);
  expectParity('ce', ce.data, get('out.ce').data);
  const diag = mean(indexSelect(reshape(e, [B * B]), 0, Int32Array.from({ length: B }, (_, i) => i * B + i))); // mean_i E[i,i]
  expectParity('diag', diag.data, get('out.diag').data);
  const loss = add(ce, mul(diag, dweight));
  expectParity('loss', loss.data, get('out.loss').data);
  return loss;
}

describe('SoftREPA parity with PyTorch', () => {
  it('forward, hidden image tokens, E, logits, loss and every parameter gradient to 1e-5', () => {
    const f = load();
    backward(lossOf(f));
    const params = f.model.namedParameters();
    const gradKeys = [...f.tensors.keys()].filter((n) => n.startsWith('grad.')).map((n) => n.slice(5)).sort();
    expect(params.map(([n]) => n).sort()).toEqual(gradKeys);
    for (const [n, p] of params) expectParity(`grad ${n}`, p.grad!.data, f.get(`grad.${n}`).data);
  });

  it('with the base frozen (stage 2) only dc_tokens has a gradient, the same one', () => {
    const f = load();
    f.model.freezeBase();
    backward(lossOf(f));
    for (const [n, p] of f.model.namedParameters()) {
      if (n === 'dc_tokens') expectParity('grad dc_tokens (frozen base)', p.grad!.data, f.get('grad.dc_tokens').data);
      else expect(p.grad, `${n} must receive no gradient`).toBeFalsy();
    }
  });
});
