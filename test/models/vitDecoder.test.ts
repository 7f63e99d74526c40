// RAE's ViT decoder (src/models/vitDecoder.ts): parity with a float64 PyTorch reference
// (test/fixtures/vitdec/vit_decoder.safetensors, make_vit_decoder_fixture.py) for the image, the
// per-token patches, the input gradient and EVERY parameter gradient to 1e-5 of the largest
// reference value (float32 here); a finite-difference check (float64 central differences) of the
// input gradient and of every element of every parameter gradient; unpatchify against an
// independent loop; the noise augmentation's properties (fast-check); errors naming the field.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { backward, gradcheck, mul, sub, sum } from '../../src/autograd/index.ts';
import { cast, type Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import {
  ViTDecoder, createViTDecoder, noiseAugment, parseViTDecoderConfig, vitDecoderPreset,
} from '../../src/models/vitDecoder.ts';
import { sincosPosEmbed2d } from '../../src/models/embeddings.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { checkEveryParameter, expectParity, toFloat64 } from './float64Checks.ts';

const fx = readSafetensors(join(import.meta.dirname, '../fixtures/vitdec/vit_decoder.safetensors'));
const get = (k: string): Tensor => {
  const v = fx.tensors.get(k);
  if (!v) throw new Error(`fixture has no '${k}'`);
  return cast(v, 'float32');
};

describe('ViTDecoder: parity with PyTorch', () => {
  for (const p of ['a', 'b']) {
    it(`${p}: image, patches, gradient to the tokens and to every parameter`, () => {
      expect(fx.metadata.format).toBe('diffactor-vit-decoder-parity');
      const cfg = parseViTDecoderConfig(fx.metadata[p]);
      const m = new ViTDecoder(cfg, new Rng(0));
      const prefix = `${p}.w.`;
      m.loadStateDict(new Map([...fx.tensors.keys()].filter((k) => k.startsWith(prefix)).map((k) => [k.slice(prefix.length), get(k)]))); // strict
      const z = get(`${p}.in.z`).requireGrad();
      const patches = m.forwardPatches(z);
      expectParity('patches', patches.data, get(`${p}.out.patches`).data);
      const img = m.forward(z);
      expect(img.shape).toEqual(get(`${p}.out.img`).shape);
      expectParity('image', img.data, get(`${p}.out.img`).data);
      backward(sum(mul(img, get(`${p}.in.cot`))));
      expectParity('grad z', z.grad!.data, get(`${p}.grad.z`).data);
      const params = m.namedParameters();
      const want = [...fx.tensors.keys()].filter((k) => k.startsWith(`${p}.grad.`) && k !== `${p}.grad.z`).map((k) => k.slice(`${p}.grad.`.length)).sort();
      expect(params.map(([n]) => n).sort()).toEqual(want);
      for (const [n, t] of params) expectParity(`grad ${n}`, t.grad!.data, get(`${p}.grad.${n}`).data);
    });
  }

  it('the fixed positions are MAE\'s sin-cos with a zero cls row, and not trainable', () => {
    const m = createViTDecoder(vitDecoderPreset('ViTDec-T'), 1);
    const d = m.config.hiddenDim;
    expectClose('pos', m.decoder_pos_embed.data.subarray(d), Float32Array.from(sincosPosEmbed2d(d, m.config.grid)), 0, 0);
    expect([...m.decoder_pos_embed.data.subarray(0, d)].every((v) => v === 0)).toBe(true);
    expect(m.namedParameters().some(([n]) => n === 'decoder_pos_embed')).toBe(false);
    expect([...m.trainable_cls_token.data].every((v) => v === 0)).toBe(true);
  });
});

describe('ViTDecoder: finite differences (float64)', () => {
  for (const denormalize of [null, { mean: [0.1, -0.3], std: [0.7, 1.9] }]) {
    it(`gradient to the tokens and to every element of every parameter (de-normalise ${denormalize ? 'on' : 'off'})`, () => {
      const cfg = parseViTDecoderConfig({ tokenDim: 3, grid: 2, hiddenDim: 8, depth: 1, numHeads: 2, mlpDim: 6, patchSize: 2, outChannels: 2, layerNormEps: 1e-6, denormalize });
      const m = createViTDecoder(cfg, 4);
      // move every parameter off its init (cls token 0, LayerNorm 1/0) so no gradient is special
      const pr = new Rng(9);
      for (const [n, t] of m.namedParameters()) { const r = pr.child(n).normalArray(t.size, 0, 0.3); t.data.forEach((v, i) => { t.data[i] = v + r[i]; }); }
      toFloat64(m);
      const rng = new Rng(5);
      const z = rng.normal([2, 4, 3], 0, 1, 'float64');
      const r = gradcheck((x) => m.forward(x), [z]);
      expect(r.ok, r.message).toBe(true);
      // parameters: loss = sum(cot · image), analytic by backward, numeric by central differences
      const cot = rng.normal([2, 2, 4, 4], 0, 1, 'float64');
      expect(checkEveryParameter(m, () => sum(mul(m.forward(z), cot)))).toBe(m.numParameters());
    });
  }
});

describe('ViTDecoder: unpatchify and de-normalisation', () => {
  it('unpatchify places value (py, px, c) of token (i, j) at pixel (c, i·p + py, j·p + px)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), (b, g, p, ch) => {
      const m = new ViTDecoder(parseViTDecoderConfig({ tokenDim: 2, grid: g, hiddenDim: 4, depth: 1, numHeads: 1, mlpDim: 4, patchSize: p, outChannels: ch, layerNormEps: 1e-6, denormalize: null }), new Rng(1));
      const x = new Rng(b * 100 + g * 10 + p).normal([b, g * g, p * p * ch]);
      const img = m.unpatchify(x);
      const H = g * p;
      expect(img.shape).toEqual([b, ch, H, H]);
      for (let n = 0; n < b; n++) for (let i = 0; i < g; i++) for (let j = 0; j < g; j++) for (let py = 0; py < p; py++) for (let px = 0; px < p; px++) for (let c = 0; c < ch; c++) {
        const src = ((n * g * g + i * g + j) * p * p + py * p + px) * ch + c;
        const dst = ((n * ch + c) * H + i * p + py) * H + j * p + px;
        if (img.data[dst] !== x.data[src]) throw new Error(`(${n},${i},${j},${py},${px},${c}) misplaced`);
      }
    }), { numRuns: 30 });
  });

  it('de-normalisation is x·std + mean per channel on the same decoder weights', () => {
    const base = vitDecoderPreset('ViTDec-T');
    const dn = { mean: [0.5, -1, 2], std: [0.25, 3, 1] };
    const a = createViTDecoder(base, 3), b = createViTDecoder({ ...base, denormalize: dn }, 3);
    const z = new Rng(2).normal([2, 16, 16]);
    const ya = a.forward(z), yb = b.forward(z);
    const [B, C, H, W] = ya.shape;
    for (let n = 0; n < B; n++) for (let c = 0; c < C; c++) for (let k = 0; k < H * W; k++) {
      const i = (n * C + c) * H * W + k;
      expect(yb.data[i]).toBeCloseTo(ya.data[i] * dn.std[c] + dn.mean[c], 5);
    }
  });
});

describe('noiseAugment (RAE noising: z + τ·U(0,1)·N(0, I), one σ per sample)', () => {
  const arb = fc.record({ b: fc.integer({ min: 1, max: 4 }), n: fc.integer({ min: 1, max: 6 }), seed: fc.integer({ min: 0, max: 1e6 }), tau: fc.double({ min: 0.01, max: 3, noNaN: true }) });

  it('is a function of the rng state; the noise is additive (independent of z) and linear in τ', () => {
    fc.assert(fc.property(arb, ({ b, n, seed, tau }) => {
      const z1 = new Rng(seed + 1).normal([b, n, 3], 0, 1, 'float64'), z2 = new Rng(seed + 2).normal([b, n, 3], 0, 5, 'float64');
      const e1 = sub(noiseAugment(z1, tau, new Rng(seed)), z1), e1b = sub(noiseAugment(z1, tau, new Rng(seed)), z1);
      const e2 = sub(noiseAugment(z2, tau, new Rng(seed)), z2);
      const e3 = sub(noiseAugment(z1, 2 * tau, new Rng(seed)), z1);
      expectClose('same rng', e1.data, e1b.data, 0, 0);
      expectClose('additive', e1.data, e2.data, 1e-12, 1e-9);
      expectClose('linear in tau', e3.data, e1.data.map((v) => 2 * v), 1e-12, 1e-9);
      expect(noiseAugment(z1, 0, new Rng(seed))).toBe(z1);
    }), { numRuns: 50 });
  });

  it('one σ per sample in [0, τ): the per-sample noise std is below τ, and σ averages τ/2 over samples', () => {
    const tau = 0.8, B = 400, per = 2000;
    const z = new Rng(1).normal([B, per], 0, 0, 'float64');
    const e = noiseAugment(z, tau, new Rng(7)).data;
    let mean = 0;
    for (let i = 0; i < B; i++) {
      let s = 0;
      for (let j = 0; j < per; j++) s += e[i * per + j] ** 2;
      const sd = Math.sqrt(s / per);
      expect(sd).toBeLessThan(tau * 1.06); // σ < τ, sampling error of an RMS over 2000 draws ≲ 3 %
      mean += sd / B;
    }
    expect(Math.abs(mean - tau / 2)).toBeLessThan(0.03); // E[σ] = τ/2 (uniform); half-normal would give 0.8·τ
  });

  it('passes the gradient to z unchanged', () => {
    const z = new Rng(3).normal([2, 3, 4], 0, 1, 'float64');
    const r = gradcheck((x) => noiseAugment(x, 0.5, new Rng(11)), [z]);
    expect(r.ok, r.message).toBe(true);
  });

  it('rejects a bad tau', () => {
    expect(() => noiseAugment(new Rng(1).normal([2, 3]), -1, new Rng(1))).toThrow(/tau must be a finite number ≥ 0, got -1/);
    expect(() => noiseAugment(new Rng(1).normal([2, 3]), NaN, new Rng(1))).toThrow(/tau/);
  });
});

describe('ViTDecoder: config and input errors name the field', () => {
  it('config', () => {
    const base = vitDecoderPreset('ViTDec-T');
    expect(() => parseViTDecoderConfig({ ...base, numHeads: 3 })).toThrow(/numHeads: hiddenDim 32 is not divisible by numHeads 3/);
    expect(() => parseViTDecoderConfig({ ...base, hiddenDim: 18, numHeads: 2 })).toThrow(/hiddenDim: expected a multiple of 4/);
    expect(() => parseViTDecoderConfig({ ...base, denormalize: { mean: [0], std: [1, 1, 1] } })).toThrow(/denormalize: mean has 1 entries, expected outChannels = 3/);
    expect(() => parseViTDecoderConfig({ ...base, depth: 0 })).toThrow(/depth/);
    expect(() => parseViTDecoderConfig({ ...base, extra: 1 })).toThrow(/extra/);
    expect(() => vitDecoderPreset('nope')).toThrow(/unknown ViT decoder preset 'nope'; known: ViTDec-T/);
  });

  it('tokens of the wrong shape', () => {
    const m = createViTDecoder(vitDecoderPreset('ViTDec-T'), 1);
    expect(() => m.forward(new Rng(1).normal([2, 9, 16]))).toThrow(/expected tokens \(B, 16, 16\) \(grid 4×4\), got \[2, 9, 16\]/);
  });

  it('XL preset: RAE\'s decoder sizes (16×16 tokens of 768 → 3×256×256)', () => {
    const c = vitDecoderPreset('ViTDec-XL');
    expect([c.grid * c.patchSize, c.hiddenDim, c.depth, c.numHeads, c.mlpDim]).toEqual([256, 1152, 28, 16, 4096]);
  });
});
