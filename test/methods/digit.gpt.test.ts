// DiGIT's GPT student and pixel decoder (src/methods/digit/gpt.ts, decoder.ts): parity with a
// float64 PyTorch reference (test/fixtures/make_digit_gpt_fixture.py; logits, losses and EVERY
// parameter gradient within 1e-5 of the tensor's scale, float32 here), float64 finite differences
// of every parameter element of a tiny GPT and decoder, and the invariants of methods-b §8:
// (c) causality (changing the input token at position > k leaves the logits at ≤ k unchanged) and
// (e) class ids and code ids occupy disjoint vocabulary ranges.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import fc from 'fast-check';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { add, backward, mul, noGrad, sum } from '../../src/autograd/index.ts';
import { cast, type Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { DigitGpt, nextTokenLoss, type GptConfig } from '../../src/methods/digit/gpt.ts';
import { TokenDecoder, reconstructionLoss } from '../../src/methods/digit/decoder.ts';
import { checkEveryParameter, expectParity, toFloat64 } from '../models/float64Checks.ts';

const fx = readSafetensors(join(import.meta.dirname, '../fixtures/digit/gpt.safetensors'));
const get = (k: string): Tensor => {
  const v = fx.tensors.get(k);
  if (!v) throw new Error(`fixture has no '${k}'`);
  return cast(v, 'float32');
};
const weights = (prefix: string): Map<string, Tensor> =>
  new Map([...fx.tensors.keys()].filter((k) => k.startsWith(prefix)).map((k) => [k.slice(prefix.length), get(k)]));

const TINY: GptConfig = { vocab: 5, numClasses: 2, seqLen: 4, dim: 8, depth: 2, heads: 2, mlpRatio: 2 };

describe('DiGIT GPT and pixel decoder: parity with PyTorch', () => {
  it('GPT logits, the smoothed next-token loss and every parameter gradient to 1e-5', () => {
    expect(fx.metadata.format).toBe('diffactor-digit-gpt-parity');
    const m = new DigitGpt(JSON.parse(fx.metadata.gpt) as GptConfig, new Rng(0));
    m.loadStateDict(weights('gpt.w.')); // strict: the reference's names
    const codes = Int32Array.from(get('in.codes').data), y = Int32Array.from(get('in.y').data);
    const logits = m.forward(codes, y);
    expect(logits.shape).toEqual(get('gpt.out.logits').shape);
    expectParity('logits', logits.data, get('gpt.out.logits').data);
    const loss = nextTokenLoss(logits, codes, Number(fx.metadata.label_smoothing));
    expectParity('loss', loss.data, get('gpt.out.loss').data);
    backward(loss);
    const params = m.namedParameters();
    expect(params.map(([n]) => n).sort()).toEqual([...weights('gpt.grad.').keys()].sort());
    for (const [n, p] of params) expectParity(`grad ${n}`, p.grad!.data, get(`gpt.grad.${n}`).data);
  });

  it('decoder image, the L2 loss and every parameter gradient to 1e-5', () => {
    const m = new TokenDecoder(JSON.parse(fx.metadata.decoder), new Rng(0));
    m.loadStateDict(weights('dec.w.'));
    const recon = m.forward(Int32Array.from(get('in.codes').data));
    expect(recon.shape).toEqual(get('dec.out.recon').shape);
    expectParity('recon', recon.data, get('dec.out.recon').data);
    const loss = reconstructionLoss(recon, get('in.x'));
    expectParity('loss', loss.data, get('dec.out.loss').data);
    backward(loss);
    const params = m.namedParameters();
    expect(params.map(([n]) => n).sort()).toEqual([...weights('dec.grad.').keys()].sort());
    for (const [n, p] of params) expectParity(`grad ${n}`, p.grad!.data, get(`dec.grad.${n}`).data);
  });
});

describe('DiGIT GPT and pixel decoder: float64 finite differences', () => {
  it('GPT: every parameter element of a tiny model (smoothed next-token loss against a cotangent of the logits)', () => {
    const m = new DigitGpt(TINY, new Rng(3));
    toFloat64(m);
    // spread the weights so that no gradient is tiny by init
    const r = new Rng(4);
    for (const [, t] of m.namedParameters()) for (let j = 0; j < t.size; j++) t.data[j] += 0.3 * r.normalArray(1)[0];
    const codes = Int32Array.from([0, 3, 4, 1, 2, 2, 0, 4]), y = Int32Array.from([1, 0]);
    const cot = new Rng(5).normal([2, 4, 5], 0, 1, 'float64');
    const checked = checkEveryParameter(m, () => {
      const logits = m.forward(codes, y);
      return add(sum(mul(logits, cot)), nextTokenLoss(logits, codes, 0.1));
    }, 1e-7);
    expect(checked).toBe(m.numParameters());
  });

  it('decoder: every parameter element of a tiny model (cotangent of the image)', () => {
    const m = new TokenDecoder({ vocab: 4, grid: 2, patch: 2, channels: 1, embedDim: 3, width: 3 }, new Rng(6));
    toFloat64(m);
    const codes = Int32Array.from([0, 3, 1, 1, 2, 0, 3, 3]);
    const cot = new Rng(7).normal([2, 1, 4, 4], 0, 1, 'float64');
    const checked = checkEveryParameter(m, () => sum(mul(m.forward(codes), cot)), 1e-7);
    expect(checked).toBe(m.numParameters());
  });
});

describe('DiGIT GPT: invariants (methods-b §8)', () => {
  it('(c) causality: changing codes at positions > k leaves the logits at positions ≤ k bit-identical', () => {
    const m = new DigitGpt({ ...TINY, seqLen: 6 }, new Rng(8));
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 6, maxLength: 6 }),
      fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 6, maxLength: 6 }),
      fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 1 }),
      (a, b, k, y) => {
        const perturbed = a.map((v, i) => (i > k ? b[i] : v));
        const la = noGrad(() => m.forward(a, [y])), lb = noGrad(() => m.forward(perturbed, [y]));
        // logits at position p read inputs 0..p = [class, codes 0..p−1]: positions p ≤ k + 1 see codes ≤ k only
        const upTo = Math.min(k + 2, 6) * 5;
        expect(Array.from(lb.data.subarray(0, upTo))).toEqual(Array.from(la.data.subarray(0, upTo)));
      },
    ), { numRuns: 40 });
  });

  it('(e) class ids sit after the K code ids: input ids of codes are < K, of classes in K..K+C−1', () => {
    const m = new DigitGpt(TINY, new Rng(9));
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 12, maxLength: 12 }),
      fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 3, maxLength: 3 }),
      (codes, y) => {
        const ids = m.inputIds(codes, y, 4);
        for (let i = 0; i < 3; i++) {
          expect(ids[i * 4]).toBe(5 + y[i]);
          for (let j = 1; j < 4; j++) { expect(ids[i * 4 + j]).toBe(codes[i * 4 + j - 1]); expect(ids[i * 4 + j]).toBeLessThan(5); }
        }
      },
    ));
    expect(m.tok_emb.shape).toEqual([7, 8]);
    expect(m.head.weight.shape).toEqual([5, 8]);
  });

  it('names the field of a bad input', () => {
    expect(() => new DigitGpt({ ...TINY, heads: 3 }, new Rng(0))).toThrow(/dim 8 is not divisible by heads 3/);
    expect(() => new DigitGpt({ ...TINY, vocab: 0 }, new Rng(0))).toThrow(/vocab must be a positive integer, got 0/);
    const m = new DigitGpt(TINY, new Rng(0));
    expect(() => m.forward([0, 1, 2, 5], [0])).toThrow(/code 5 at row 0, position 3 is not in 0..4/);
    expect(() => m.forward([0, 1, 2, 3], [2])).toThrow(/class 2 of row 0 is not in 0..1/);
    expect(() => new TokenDecoder({ vocab: 4, grid: 2, patch: 3, channels: 1, embedDim: 3, width: 3 }, new Rng(0))).toThrow(/patch 3 must be a power of two/);
  });
});
