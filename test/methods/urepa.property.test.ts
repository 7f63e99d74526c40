// Property tests of U-REPA's invariants (src/methods/u-repa; the paper's stated parts and our
// reconstruction, see the module header), over values fast-check generates:
// (b) the manifold loss is ≥ 0, symmetric in its arguments, 0 when u = c·y (c > 0), invariant to a
//     positive rescaling of any sample (and of any token), and 0 whenever the similarity structure
//     matches (u = y·Q with Q orthogonal), where the token loss is not; the sample/token switch:
//     per-sample rotations keep the token structure (token level 0) but not the sample one;
// (a) the projector runs BEFORE the upsampling: shapes (B, n/4, D) → (B, n/4, d) → (B, n, d); with
//     'nearest' the order does not matter, with 'bilinear' it does, and the method's align terms use
//     the configured mode and level;
// (c) only the middle stage feeds the alignment: its gradients reach blocks ≤ the aligned block,
//     the embedders and the projector, never the skips, the later blocks or the final layer;
// the time convention at the boundary (identity: U-REPA's code is REPA's) and the partial forward.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { add, backward, mul, sum } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { linear } from '../../src/diffusion/index.ts';
import { Projector } from '../../src/models/projector.ts';
import { createSiT } from '../../src/models/sit.ts';
import { ProjectorHeads } from '../../src/methods/projectorHeads.ts';
import { hiddenAfterBlock } from '../../src/methods/partialForward.ts';
import { USiT, createUSiT } from '../../src/methods/u-repa/model.ts';
import { alignedTokens, manifoldLoss, similarityMatrix, uRepaTokenLoss } from '../../src/methods/u-repa/loss.ts';
import { tokenUp } from '../../src/methods/u-repa/tokens.ts';
import { URepaSection, uRepa } from '../../src/methods/u-repa/index.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { perturb, tinySiTConfig, withGrad, zeroAllGrads } from './tiny.ts';

const LEVELS = ['sample', 'token'] as const;
const f64 = (v: ArrayLike<number>, shape: number[]): Tensor => tensor(Array.from(v), shape, 'float64');

/** Two (B, T, d) token sets of fast-check values, every token of norm ≥ 1e-3, and positive scales. */
const pair = fc.record({ B: fc.integer({ min: 1, max: 4 }), T: fc.integer({ min: 1, max: 5 }), d: fc.integer({ min: 1, max: 6 }) })
  .chain(({ B, T, d }) => fc.tuple(
    fc.constant([B, T, d] as number[]),
    fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: 2 * B * T * d, maxLength: 2 * B * T * d }),
    fc.array(fc.double({ min: 1e-2, max: 1e2, noNaN: true }), { minLength: B * T, maxLength: B * T }),
  ))
  .map(([shape, v, scales]) => {
    const [B, T, d] = shape, n = B * T * d;
    const fix = (a: number[]) => {
      for (let r = 0; r < B * T; r++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += a[r * d + j] ** 2;
        if (Math.sqrt(s) < 1e-3) a[r * d] = 1;
      }
      return a;
    };
    return { shape, u: fix(v.slice(0, n)), y: fix(v.slice(n)), scales };
  });

const man = (u: number[], y: number[], shape: number[], level: 'sample' | 'token') => manifoldLoss(f64(u, shape), f64(y, shape), level).item();
/** Token r of (rows, d) values multiplied by f(r). */
const perToken = (v: number[], d: number, f: (r: number) => number) => v.map((x, i) => x * f(Math.floor(i / d)));

/** A random d×d orthogonal matrix (Gram–Schmidt of Gaussian columns), row-major. */
function orthogonal(d: number, rng: Rng): number[] {
  const a = Array.from(rng.normal([d, d], 0, 1, 'float64').data);
  const q: number[][] = [];
  for (let c = 0; c < d; c++) {
    let v = Array.from({ length: d }, (_, r) => a[r * d + c]);
    for (const p of q) { const dot = v.reduce((s, x, i) => s + x * p[i], 0); v = v.map((x, i) => x - dot * p[i]); }
    const n = Math.hypot(...v);
    q.push(v.map((x) => x / n));
  }
  return Array.from({ length: d * d }, (_, i) => q[i % d][Math.floor(i / d)]); // Q[r][c] = column c's r-th entry
}
/** Rows of (rows, d) values times Q (d×d), the rotation chosen per sample by q(b). */
function rotate(v: number[], [B, T, d]: number[], q: (b: number) => number[]): number[] {
  const out = new Array<number>(v.length).fill(0);
  for (let b = 0; b < B; b++) {
    const Q = q(b);
    for (let t = 0; t < T; t++) for (let c = 0; c < d; c++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += v[(b * T + t) * d + k] * Q[k * d + c];
      out[(b * T + t) * d + c] = s;
    }
  }
  return out;
}

describe('U-REPA manifold loss', () => {
  it('≥ 0, symmetric, 0 at u = c·y, invariant to positive per-sample and per-token rescaling (both levels)', () => {
    fc.assert(fc.property(pair, fc.double({ min: 1e-2, max: 1e2, noNaN: true }), ({ shape, u, y, scales }, c) => {
      const [, T, d] = shape;
      for (const level of LEVELS) {
        const l = man(u, y, shape, level);
        expect(l).toBeGreaterThanOrEqual(0);
        expect(Math.abs(man(y, u, shape, level) - l)).toBeLessThan(1e-12);
        expect(man(y.map((v) => c * v), y, shape, level)).toBeLessThan(1e-12);
        const perSample = (v: number[]) => perToken(v, d, (r) => scales[Math.floor(r / T) * T]);
        expect(Math.abs(man(perSample(u), y, shape, level) - l)).toBeLessThan(1e-9);
        expect(Math.abs(man(u, perSample(y), shape, level) - l)).toBeLessThan(1e-9);
        expect(Math.abs(man(perToken(u, d, (r) => scales[r]), y, shape, level) - l)).toBeLessThan(1e-9);
      }
    }), { seed: 41, numRuns: 60 });
  });

  it('0 when the similarity structures match (u = y·Q, Q orthogonal) while the token loss is not 0; the switch: per-sample rotations keep the token structure only', () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 4 }), fc.integer({ min: 2, max: 5 }), fc.integer({ min: 2, max: 5 }), fc.integer({ min: 0, max: 1e6 }), (B, T, d, seed) => {
      const rng = new Rng(seed), shape = [B, T, d];
      const y = Array.from(rng.normal(shape, 0, 1, 'float64').data);
      const Q = orthogonal(d, rng.child('q'));
      const u = rotate(y, shape, () => Q);
      for (const level of LEVELS) expect(man(u, y, shape, level)).toBeLessThan(1e-12);
      // a different rotation per sample: each sample's T×T structure is kept, the B×B one is not
      const qs = Array.from({ length: B }, (_, b) => orthogonal(d, rng.child(`q${b}`)));
      const w = rotate(y, shape, (b) => qs[b]);
      expect(man(w, y, shape, 'token')).toBeLessThan(1e-12);
      expect(man(w, y, shape, 'sample')).toBeGreaterThan(1e-8);
    }), { seed: 42, numRuns: 30 });
    // a fixed rotation moves tokens away from their targets: the token loss sees what the manifold loss does not
    const y = f64([1, 0, 0, 1, 1, 1, -1, 2], [2, 2, 2]);
    const u = f64([0, 1, -1, 0, -1, 1, -2, -1], [2, 2, 2]); // y rotated by 90°
    expect(manifoldLoss(u, y, 'sample').item()).toBeLessThan(1e-12);
    expect(uRepaTokenLoss(u, y).item()).toBeCloseTo(0, 12);
    expect(uRepaTokenLoss(y, y).item()).toBeCloseTo(-1, 12);
  });

  it('one sample: the sample-level matrix is [1] (loss 0), the token level is not; shapes (B, B) and (B, T, T)', () => {
    const rng = new Rng(3);
    const u = rng.normal([1, 4, 3], 0, 1, 'float64'), y = rng.normal([1, 4, 3], 0, 1, 'float64');
    expect(manifoldLoss(u, y, 'sample').item()).toBeLessThan(1e-14);
    expect(manifoldLoss(u, y, 'token').item()).toBeGreaterThan(1e-3);
    expect(similarityMatrix(rng.normal([3, 4, 2]), 'sample').shape).toEqual([3, 3]);
    expect(similarityMatrix(rng.normal([3, 4, 2]), 'token').shape).toEqual([3, 4, 4]);
    expect(() => manifoldLoss(rng.normal([2, 4, 3]), rng.normal([2, 16, 3]), 'sample')).toThrow(/need the same \(B, T\)/);
  });
});

describe('U-REPA alignment: MLP, then upsample', () => {
  it('(B, n/4, D) → (B, n/4, d) → (B, n, d); nearest commutes with the MLP, bilinear does not; the terms use the configured mode and level', () => {
    const rng = new Rng(5);
    const proj = new Projector(16, 12, 6, rng.child('p'));
    perturb(proj, 9);
    const h = rng.normal([2, 4, 16]);
    const y = rng.normal([2, 16, 6]);
    const up = alignedTokens(proj, h, 'bilinear');
    expect(proj.forward(h).shape).toEqual([2, 4, 6]);
    expect(up.shape).toEqual([2, 16, 6]);
    expectClose('nearest: MLP∘up = up∘MLP', alignedTokens(proj, h, 'nearest').data, proj.forward(tokenUp(h, 'nearest')).data, 1e-6, 1e-5);
    const other = proj.forward(tokenUp(h, 'bilinear')).data;
    let diff = 0;
    for (let i = 0; i < other.length; i++) diff = Math.max(diff, Math.abs(other[i] - up.data[i]));
    expect(diff).toBeGreaterThan(1e-3);

    const heads = new ProjectorHeads([proj]);
    const tg = { feats: { patch: y, cls: rng.normal([2, 6]) }, teacher: null, prefixTokens: 0 };
    for (const upsample of ['bilinear', 'nearest'] as const) for (const manifold of ['sample', 'token'] as const) {
      const s = URepaSection.parse({ stage_blocks: 1, mid_blocks: 1, upsample, manifold });
      const u = alignedTokens(proj, h, upsample);
      const [tok, mf] = uRepa.alignTerms!;
      expect(tok.loss(s, heads, h, tg as never).item()).toBeCloseTo(uRepaTokenLoss(u, y).item(), 6);
      expect(mf.loss(s, heads, h, tg as never).item()).toBeCloseTo(manifoldLoss(u, y, manifold).item(), 6);
      expect(tok.weight(s, undefined as never)).toBe(0.5);
      expect(mf.weight(s, undefined as never)).toBe(0.5 * 3);
    }
  });
});

describe('U-REPA backbone', () => {
  const shape = { stage: 1, mid: 1 };
  const make = (seed: number) => { const m = createUSiT(tinySiTConfig(3), shape, seed); perturb(m, seed + 1); return m; };

  it('(c) the alignment gradient reaches blocks ≤ the middle, the embedders and the projector only; the velocity loss reaches everything', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(...LEVELS), (seed, level) => {
      const model = make(seed);
      const proj = new Projector(16, 12, 6, new Rng(seed + 2));
      const rng = new Rng(seed + 3);
      const x = rng.normal([2, 1, 8, 8]), t = rng.uniformArray(2), y = rng.normal([2, 16, 6]);
      zeroAllGrads(model, proj);
      const o = model.forward(x, t, [1, 2], { taps: [2], forceDrop: [0, 0] });
      expect(o.hidden.get(2)!.shape).toEqual([2, 4, 16]); // the 2×2 middle
      const u = alignedTokens(proj, o.hidden.get(2)!, 'bilinear');
      backward(add(manifoldLoss(u, y, level), uRepaTokenLoss(u, y)));
      const g = withGrad(model);
      expect(withGrad(proj).length).toBe(6);
      expect(g.filter((n) => n.startsWith('blocks.2.') || n.startsWith('skips.') || n.startsWith('final_layer.'))).toEqual([]);
      expect(g).toEqual(expect.arrayContaining(['blocks.0.attn.qkv.weight', 'blocks.1.mlp.fc2.weight', 'x_embedder.proj.weight', 't_embedder.mlp.0.weight']));
      zeroAllGrads(model, proj);
      const o2 = model.forward(x, t, [1, 2], { forceDrop: [0, 0] });
      backward(sum(mul(o2.out, o2.out)));
      const all = withGrad(model);
      expect(all).toEqual(expect.arrayContaining(['skips.0.weight', 'blocks.2.attn.qkv.weight', 'final_layer.linear.weight', 'blocks.0.attn.qkv.weight']));
    }), { seed: 43, numRuns: 6 });
  });

  it('time convention at the boundary: x_t = (1 − t)·x + t·ε, target ε − x (REPA\'s, unchanged)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), (seed) => {
      const model = make(seed);
      model.eval();
      const rng = new Rng(seed);
      const x = rng.normal([2, 1, 8, 8]), eps = rng.normal([2, 1, 8, 8]), t = rng.uniformArray(2);
      const s = URepaSection.parse({ stage_blocks: 1, mid_blocks: 1 });
      const f = uRepa.backbone!.forward(s, model, { input: x, eps, t, y: new Int32Array([3, 4]), taps: [], feats: null, draws: {} }, linear, new Rng(1));
      const xt = Array.from(x.data, (v, i) => (1 - t[Math.floor(i / 64)]) * v + t[Math.floor(i / 64)] * eps.data[i]);
      expectClose('target ε − x', f.target.data, Array.from(eps.data, (e, i) => e - x.data[i]), 1e-6, 1e-6);
      const direct = model.forward(tensor(xt, [2, 1, 8, 8]), t, [3, 4]);
      expectClose('prediction at x_t, t', f.out.data, direct.out.data, 1e-5, 1e-4);
    }), { seed: 44, numRuns: 5 });
  });

  it('the partial forward equals the full forward\'s hidden states; hiddenAfterBlock defers to it; fields named in errors', () => {
    const model = make(7).eval();
    const rng = new Rng(8);
    const x = rng.normal([2, 1, 8, 8]), t = rng.uniformArray(2);
    const o = model.forward(x, t, [1, 2], { taps: [1, 2, 3] });
    for (const k of [1, 2, 3]) {
      expect(Array.from(model.hiddenAfter(x, t, [1, 2], k).data), `block ${k}`).toEqual(Array.from(o.hidden.get(k)!.data));
      expect(Array.from(hiddenAfterBlock(model, x, t, [1, 2], k).data)).toEqual(Array.from(o.hidden.get(k)!.data));
    }
    expect(o.hidden.get(1)!.shape).toEqual([2, 16, 16]);
    expect(o.hidden.get(2)!.shape).toEqual([2, 4, 16]);
    expect(model).toBeInstanceOf(USiT);
    expect(() => createUSiT(tinySiTConfig(4), shape, 0)).toThrow(/model\.depth is 4 but .*u_repa\.stage_blocks \+ u_repa\.mid_blocks = 3/);
    expect(() => createUSiT({ ...tinySiTConfig(3), inputSize: 6 }, shape, 0)).toThrow(/3×3.*even/);
    expect(() => uRepa.check!(URepaSection.parse({ stage_blocks: 1, mid_blocks: 1, align_block: 3 }), { model: { depth: 3 } } as never)).toThrow(/u_repa\.align_block 3 is not a middle block \(2\.\.2/);
    expect(() => uRepa.check!(URepaSection.parse({ stage_blocks: 2, mid_blocks: 2 }), { model: { depth: 5 } } as never)).toThrow(/model\.depth is 5 but u_repa needs .* = 6/);
    expect(() => URepaSection.parse({ manifold: 'pairs' })).toThrow(/manifold/);
    // the shared modules are the SiT of the seed, weight for weight
    const sd = createUSiT(tinySiTConfig(3), shape, 4).stateDict(), sit = createSiT(tinySiTConfig(3), 4).stateDict();
    expect([...sd.keys()].filter((k) => !sit.has(k)).sort()).toEqual(['skips.0.bias', 'skips.0.weight']);
    for (const [k, v] of sit) expect(Array.from(sd.get(k)!.data), k).toEqual(Array.from(v.data));
  });
});
