// Property tests of UniFlow (src/methods/uniflow; methods-b §9 "Invariants to property-test"):
// (a) at initialisation the student is an exact copy of the teacher: every α_l = 0, L_dist = 0 and
//     w_l = l / Σk;
// (b) Σ w_l = 1, w_l > 0; with β = 0, w_l = l / Σk; raising one α_l (others fixed) raises w_l;
//     the weights are softmax(ln(l/L) + β α_l) computed independently here;
// (c) the teacher gets no gradient (its parameters never require grad; after a backward of
//     L_dist + L_flow none has a gradient and its weights are unchanged by a step), while the
//     student's encoder does;
// (d) with no GTB, the decoder's output for patch (i, j) depends only on c^{(i,j)}, its own noisy
//     pixels and its own time (other patches' conditions, noise and times change nothing), and c^{(i,j)}
//     depends only on the tokens of its own 2×2 window;
// (e) a one-step decode is x̂ = ε − v_θ(ε, 1, c);
// and the pieces: merge/unmerge and patchify/unpatchify are inverse permutations, x_t per patch is
// (1 − t)x + tε, the student's preprocessing equals FrozenEncoder.preprocess; the encoder config the
// EMA and sampling models are built from (the spec alone) is the run's encoder's; bad fields are named.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backward, add, mul, sub } from '../../src/autograd/index.ts';
import { noGrad } from '../../src/autograd/tape.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { createViT, vitPreset } from '../../src/models/vit.ts';
import { FrozenEncoder, type EncoderNormalization } from '../../src/methods/encoder.ts';
import { UniFlowModel, preprocess } from '../../src/methods/uniflow/model.ts';
import { alignmentPenalty, distillLoss, distillWeights } from '../../src/methods/uniflow/distill.ts';
import { PixelFlowDecoder, mergeTokens, noisePatches, patchify, unmergeTokens, unpatchify } from '../../src/methods/uniflow/decoder.ts';
import { velocityLoss } from '../../src/diffusion/index.ts';
import { loadSpec } from '../../src/spec/load.ts';
import { buildEncoder } from '../../src/build/parts.ts';
import { modelConfigFor } from '../../src/build/setup.ts';
import { encoderConfig, uniflow } from '../../src/methods/uniflow/index.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { perturb } from './tiny.ts';

const RUNS = { numRuns: 12, seed: 29 };
// 16 px, 1 channel; encoder patch 4 → 4×4×8 tokens, 2 blocks; decoder width 16.
const config = sitPreset('SiT-T/2', { depth: 1, hiddenSize: 16, numHeads: 2, inputSize: 16, inChannels: 1, patchSize: 4, numClasses: 3 });

function teacher(seed: number, normalization: EncoderNormalization = 'identity'): FrozenEncoder {
  const vit = createViT(vitPreset('ViT-T/4', { imgSize: 16, patchSize: 4, inChannels: 1, embedDim: 8, depth: 2, numHeads: 2 }), seed);
  perturb(vit, seed + 7, 0.3);
  return new FrozenEncoder(vit, { normalization, grid: 4 });
}

function model(seed: number, gtbDepth = 1, t: FrozenEncoder = teacher(seed)): UniFlowModel {
  const m = new UniFlowModel(config, {
    vit: t.vit.config, grid: 4, normalization: t.normalization, refPerClass: 2,
    decoder: { latentChannels: 4, width: 16, heads: 2, gtbDepth, mlpRatio: 2, flowWidth: 12, flowDepth: 2 },
  }, new Rng(seed));
  m.setTeacher(t);
  return m;
}

const images = (rng: Rng, b: number): Tensor => rng.normal([b, 1, 16, 16], 0, 0.5);

describe('(a) at initialisation the student is the teacher', () => {
  it('every α_l = 0, L_dist = 0, w_l = l / Σk', () => {
    fc.assert(fc.property(fc.nat(1e5), fc.integer({ min: 1, max: 3 }), (seed, b) => {
      const m = model(seed);
      for (const [k, v] of m.teacher!.vit.stateDict()) expect(Array.from(m.encoder.stateDict().get(k)!.data), k).toEqual(Array.from(v.data));
      const x = images(new Rng(seed + 1), b);
      const d = noGrad(() => distillLoss(m.encode(x).hidden, m.teacherHidden(x)));
      for (const a of d.alphas) expect(Math.abs(a)).toBeLessThan(1e-6);
      expect(Math.abs(d.loss.item())).toBeLessThan(1e-6);
      const L = d.weights.length, s = (L * (L + 1)) / 2;
      d.weights.forEach((w, i) => expect(w).toBeCloseTo((i + 1) / s, 6));
    }), { numRuns: 6, seed: 3 });
  });
});

describe('(b) the adaptive weights', () => {
  const alphas = fc.array(fc.double({ min: 0, max: 2, noNaN: true }), { minLength: 1, maxLength: 8 });
  it('sum to 1, are positive, equal softmax(ln(l/L) + β α_l); β = 0 gives l / Σk', () => {
    fc.assert(fc.property(alphas, fc.double({ min: 0, max: 4, noNaN: true }), (a, beta) => {
      const w = distillWeights(a, beta), L = a.length;
      expect(w.reduce((p, q) => p + q, 0)).toBeCloseTo(1, 12);
      for (const v of w) expect(v).toBeGreaterThan(0);
      // independent form: w_l = (l/L) e^{β α_l} / Σ_k (k/L) e^{β α_k}
      const u = a.map((v, i) => ((i + 1) / L) * Math.exp(beta * v)), s = u.reduce((p, q) => p + q, 0);
      w.forEach((v, i) => expect(v).toBeCloseTo(u[i] / s, 12));
      const w0 = distillWeights(a, 0), tri = (L * (L + 1)) / 2;
      w0.forEach((v, i) => expect(v).toBeCloseTo((i + 1) / tri, 12));
    }), RUNS);
  });
  it('raising one α_l (others fixed, β > 0) raises w_l', () => {
    fc.assert(fc.property(alphas, fc.nat(7), fc.double({ min: 1e-3, max: 1, noNaN: true }), fc.double({ min: 0.1, max: 4, noNaN: true }), (a, k, d, beta) => {
      const l = k % a.length;
      if (a.length === 1) return; // one layer: w = 1 always
      const up = a.slice(); up[l] += d;
      expect(distillWeights(up, beta)[l]).toBeGreaterThan(distillWeights(a, beta)[l]);
    }), RUNS);
  });
  it('α = 1 − mean cos: 0 for equal states, 2 for opposite, 1 for orthogonal; L_dist = Σ w α', () => {
    const rng = new Rng(4);
    const h = rng.normal([2, 3, 4]);
    expect(alignmentPenalty(h, h).item()).toBeCloseTo(0, 6);
    expect(alignmentPenalty(h, mul(h, -2)).item()).toBeCloseTo(2, 6);
    const e1 = tensor([1, 0, 0, 0], [1, 1, 4]), e2 = tensor([0, 3, 0, 0], [1, 1, 4]);
    expect(alignmentPenalty(e1, e2).item()).toBeCloseTo(1, 6);
    const hs = [rng.normal([2, 3, 4]), rng.normal([2, 3, 4])], ht = [rng.normal([2, 3, 4]), rng.normal([2, 3, 4])];
    const d = distillLoss(hs, ht, 2);
    expect(d.loss.item()).toBeCloseTo(d.weights[0] * d.alphas[0] + d.weights[1] * d.alphas[1], 5);
    expect(() => distillLoss(hs, ht.slice(1))).toThrow(/1 teacher layers/);
  });
});

describe('(c) the teacher gets no gradient', () => {
  it('after backward of L_dist + L_flow: the student encoder and decoder have gradients, the teacher none', () => {
    fc.assert(fc.property(fc.nat(1e5), (seed) => {
      const m = model(seed);
      perturb(m.encoder, seed + 3, 0.05); // student ≠ teacher, so α > 0 and the distillation pulls
      perturb(m.decoder, seed + 4, 0.05);
      const rng = new Rng(seed + 5), x = images(rng, 2), eps = rng.normal(x.shape), t = rng.uniformArray(2 * 16);
      const before = new Map([...m.teacher!.vit.stateDict()].map(([k, v]) => [k, Float32Array.from(v.data)]));
      const enc = m.encode(x);
      const d = distillLoss(enc.hidden, m.teacherHidden(x));
      const c = m.decoder.condition(m.decoder.latent(enc.tokens));
      const v = m.decoder.velocity(noisePatches(x, eps, t, 4), t, c);
      backward(add(d.loss, velocityLoss(v, sub(eps, x)).loss));
      for (const [k, p] of m.teacher!.vit.namedParameters()) {
        expect(p.requiresGrad, k).toBe(false);
        expect(p.grad ?? null, k).toBe(null);
        expect(Array.from(p.data), k).toEqual(Array.from(before.get(k)!));
      }
      expect(d.alphas.some((a) => a > 0)).toBe(true);
      for (const k of ['blocks.0.attn.qkv.weight', 'patch_embed.proj.weight', 'norm.weight']) {
        const g = m.encoder.stateDict().get(k)!.grad;
        expect(g && g.data.some((q) => q !== 0), `student ${k}`).toBe(true);
      }
      const g = m.decoder.flow.input_proj.weight.grad;
      expect(g && g.data.some((q) => q !== 0)).toBe(true);
    }), { numRuns: 4, seed: 8 });
  });
});

describe('(d) patch independence without GTB', () => {
  it('patch (i, j) of v reads only c^{(i,j)}, its own x_t and t; c^{(i,j)} only its 2×2 window of tokens', () => {
    fc.assert(fc.property(fc.nat(1e5), fc.nat(15), (seed, patch) => {
      const m = model(seed, 0);
      perturb(m.decoder, seed + 2, 0.2);
      const rng = new Rng(seed + 9), b = 2, g = 4, p = 4;
      const xt = images(rng, b), t = rng.uniformArray(b * g * g), c = rng.normal([b, g * g, 16]);
      const v1 = noGrad(() => m.decoder.velocity(xt, t, c));
      // change every OTHER patch's condition, noisy pixels and time (patch `patch` of image 1 kept)
      const keep = (row: number) => row === g * g + patch;
      const c2 = c.data.slice(), t2 = Float64Array.from(t), x2 = xt.data.slice();
      for (let r = 0; r < b * g * g; r++) {
        if (keep(r)) continue;
        for (let k = 0; k < 16; k++) c2[r * 16 + k] += 1.5;
        t2[r] = 1 - t2[r];
      }
      const pi = Math.floor(patch / g), pj = patch % g;
      for (let i = 0; i < b; i++) for (let y = 0; y < 16; y++) for (let z = 0; z < 16; z++) {
        if (i === 1 && Math.floor(y / p) === pi && Math.floor(z / p) === pj) continue;
        x2[(i * 16 + y) * 16 + z] += 0.7;
      }
      const v2 = noGrad(() => m.decoder.velocity(tensor(x2, xt.shape), t2, tensor(c2, c.shape)));
      const pick = (v: Tensor) => { const o: number[] = []; for (let y = 0; y < p; y++) for (let z = 0; z < p; z++) o.push(v.data[((1 * 16) + pi * p + y) * 16 + pj * p + z]); return o; };
      expect(pick(v2)).toEqual(pick(v1));
      expect(v2.data.some((q, i) => q !== v1.data[i])).toBe(true); // the others did change
      // c^{(i,j)} from the tokens: only the 2×2 window holding (i, j) matters
      const tok = rng.normal([1, g * g, 8]);
      const c1 = noGrad(() => m.decoder.condition(m.decoder.latent(tok)));
      const wi = Math.floor(pi / 2), wj = Math.floor(pj / 2), tok2 = tok.data.slice();
      for (let q = 0; q < g * g; q++) if (Math.floor(Math.floor(q / g) / 2) !== wi || Math.floor((q % g) / 2) !== wj) for (let k = 0; k < 8; k++) tok2[q * 8 + k] -= 0.9;
      const c3 = noGrad(() => m.decoder.condition(m.decoder.latent(tensor(tok2, tok.shape))));
      expect(Array.from(c3.data.subarray(patch * 16, patch * 16 + 16))).toEqual(Array.from(c1.data.subarray(patch * 16, patch * 16 + 16)));
    }), { numRuns: 6, seed: 11 });
  });
  it('with a GTB the condition mixes patches (the test above can fail)', () => {
    const m = model(3, 1);
    perturb(m.decoder, 5, 0.2);
    const rng = new Rng(6), tok = rng.normal([1, 16, 8]);
    const c1 = noGrad(() => m.decoder.condition(m.decoder.latent(tok)));
    const tok2 = tok.data.slice(); for (let k = 0; k < 8; k++) tok2[15 * 8 + k] += 1; // far corner
    const c2 = noGrad(() => m.decoder.condition(m.decoder.latent(tensor(tok2, tok.shape))));
    expect(Array.from(c2.data.subarray(0, 16))).not.toEqual(Array.from(c1.data.subarray(0, 16)));
  });
});

describe('(e) the one-step decode', () => {
  it('decode(c, ε, 1) = ε − v_θ(ε, 1, c); two steps = two Euler steps', () => {
    fc.assert(fc.property(fc.nat(1e5), (seed) => {
      const m = model(seed, 1);
      perturb(m.decoder, seed + 1, 0.2);
      const rng = new Rng(seed + 2), eps = images(rng, 2), c = rng.normal([2, 16, 16]);
      const ones = new Float64Array(32).fill(1);
      noGrad(() => {
        const x1 = m.decoder.decode(c, eps, 1);
        expectClose('one step', x1.data, sub(eps, m.decoder.velocity(eps, ones, c)).data, 1e-6, 1e-6);
        const mid = sub(eps, mul(m.decoder.velocity(eps, ones, c), 0.5));
        const x2 = sub(mid, mul(m.decoder.velocity(mid, new Float64Array(32).fill(0.5), c), 0.5));
        expectClose('two steps', m.decoder.decode(c, eps, 2).data, x2.data, 1e-6, 1e-6);
      });
    }), { numRuns: 5, seed: 12 });
  });
});

describe('the pieces', () => {
  it('merge/unmerge and patchify/unpatchify are inverse permutations with the stated layouts', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 }), fc.nat(1e5), (b, h, c, seed) => {
      const g = 2 * h, rng = new Rng(seed), d = 3;
      const tok = rng.normal([b, g * g, d]);
      const mg = mergeTokens(tok, g);
      expect(mg.shape).toEqual([b, h * h, 4 * d]);
      expect(Array.from(unmergeTokens(mg, g).data)).toEqual(Array.from(tok.data));
      // window (wi, wj), slot (si, sj) holds token (2wi + si, 2wj + sj)
      const [wi, wj, si, sj] = [h - 1, 0, 1, 0];
      const row = (2 * wi + si) * g + 2 * wj + sj;
      expect(Array.from(mg.data.subarray((wi * h + wj) * 4 * d + (si * 2 + sj) * d, (wi * h + wj) * 4 * d + (si * 2 + sj + 1) * d))).toEqual(Array.from(tok.data.subarray(row * d, row * d + d)));
      const p = 2, img = rng.normal([b, c, g * p, g * p]);
      const rows = patchify(img, p);
      expect(rows.shape).toEqual([b * g * g, c * p * p]);
      expect(Array.from(unpatchify(rows, b, c, p).data)).toEqual(Array.from(img.data));
      // row (i, r, q) value (ch, y, x) = img[i, ch, r p + y, q p + x]
      const [i, r, q, ch, y, x] = [b - 1, g - 1, 0, c - 1, 1, 0];
      expect(rows.data[(i * g * g + r * g + q) * c * p * p + (ch * p + y) * p + x]).toBe(img.data[((i * c + ch) * g * p + r * p + y) * g * p + q * p + x]);
    }), RUNS);
  });
  it('x_t per patch = (1 − t_patch)·x + t_patch·ε', () => {
    const rng = new Rng(2), x = images(rng, 2), eps = images(rng, 2), t = rng.uniformArray(32);
    const xt = noisePatches(x, eps, t, 4);
    for (let i = 0; i < 2; i++) for (let y = 0; y < 16; y++) for (let z = 0; z < 16; z++) {
      const k = (i * 16 + y) * 16 + z, tp = t[i * 16 + Math.floor(y / 4) * 4 + Math.floor(z / 4)];
      expect(xt.data[k]).toBeCloseTo((1 - tp) * x.data[k] + tp * eps.data[k], 5);
    }
  });
  it('the student reads images as FrozenEncoder.preprocess does', () => {
    for (const norm of ['identity', 'zero-one'] as const) {
      const t = teacher(1, norm), x = images(new Rng(3), 2);
      expect(Array.from(preprocess(x, t.vit.config, 4, norm).data)).toEqual(Array.from(t.preprocess(x).data));
    }
  });
  it('bad decoder settings are refused by name', () => {
    const base = { tokenDim: 8, grid: 4, patchSize: 4, channels: 1, latentChannels: 4, width: 16, heads: 2, gtbDepth: 1, mlpRatio: 2, flowWidth: 8, flowDepth: 1 };
    expect(() => new PixelFlowDecoder({ ...base, grid: 3 }, new Rng(0))).toThrow(/grid 3 must be even/);
    expect(() => new PixelFlowDecoder({ ...base, heads: 8 }, new Rng(0))).toThrow(/multiple of 4 \(2-D RoPE\)/);
    expect(() => new PixelFlowDecoder({ ...base, flowDepth: 0 }, new Rng(0))).toThrow(/flowDepth must be a positive integer/);
  });
});

describe('the method: spec fields and the models rebuilt from the spec', () => {
  it('the encoder config read from the spec alone is the run\'s encoder\'s (shipped checkpoint and a preset)', () => {
    for (const spec of [loadSpec('specs/uniflow.yaml'), tinySpec('uniflow')]) {
      const channels = spec.data.dataset === 'builtin' ? 3 : 1;
      const config = modelConfigFor(spec, { channels, height: spec.data.size, numClasses: 10 } as never);
      expect(encoderConfig(spec as never, config), spec.name).toEqual(buildEncoder(spec, { channels }, config).vit.config);
    }
  });
  it('bad section fields and settings are refused by name', () => {
    expect(() => tinySpec('uniflow', { uniflow: { beta: -1 } })).toThrow(/uniflow\.beta/);
    expect(() => tinySpec('uniflow', { uniflow: { uniform_prob: 2 } })).toThrow(/uniflow\.uniform_prob/);
    expect(() => tinySpec('uniflow', { uniflow: { stage: 'generator' } })).toThrow(/uniflow\.stage/);
    const spec = tinySpec('uniflow');
    const s = spec.uniflow as never;
    expect(() => uniflow.check!(s, { ...spec, train: { ...spec.train, eval_every: 5 } } as never)).toThrow(/train\.eval_every is 5/);
    expect(() => uniflow.check!({ ...(s as object), dist_weight: 0, flow_weight: 0 } as never, spec as never)).toThrow(/dist_weight and flow_weight are both 0/);
    expect(() => uniflow.backbone!.fromWeights(s, { spec: spec as never, config: {} as never }, new Map())).toThrow(/not a UniFlow tokenizer checkpoint/);
  });
});
