// The pieces DDT brought (RMSNorm, SwiGLU, 2-D RoPE, q/k-norm RoPE attention): finite-difference
// gradchecks in float64 of the ops and of each module with respect to its input and every
// parameter, closed-form properties (fast-check), and parity with a float64 PyTorch reference
// (test/fixtures/make_ddt_pieces_fixture.py, ddt_reference.py): output and every input and
// parameter gradient to 1e-5 relative, in float32.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tape, backward, concat, gradcheck, linear, mul, qkNormRope, qkvAttention, reshape, rmsNorm, rope2dAngles, rotary, slice, sum, withTape } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { cast, tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { RMSNorm } from '../../src/nn/rmsNorm.ts';
import { SwiGLU, swiglu, swigluHidden } from '../../src/nn/swiglu.ts';
import { RopeAttention, ropeAttention, ropeAttentionComposite } from '../../src/nn/ropeAttention.ts';
import type { Module } from '../../src/nn/module.ts';
import { expectClose } from '../kernels/expectClose.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/ddt/pieces.safetensors');
const RUNS = { numRuns: 10, seed: 13 };

function expectParity(what: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  expectClose(what, got, ref, 1e-5 * scale, 1e-5);
}

describe('rmsNorm op', () => {
  it('passes gradcheck in x and weight, and without weight', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 9 }), fc.nat(1e5), (rows, cols, seed) => {
      const rng = new Rng(seed);
      const x = rng.normal([rows, cols], 0, 1, 'float64'), w = rng.normal([cols], 1, 0.3, 'float64');
      const a = gradcheck((xx, ww) => rmsNorm(xx, ww, 1e-6), [x, w]);
      expect(a.ok, a.message).toBe(true);
      const b = gradcheck((xx) => rmsNorm(xx, null, 1e-3), [x]);
      expect(b.ok, b.message).toBe(true);
    }), RUNS);
  });

  it('has unit root-mean-square without weight (eps 0), and is invariant to positive scaling', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 12 }), fc.double({ min: 0.01, max: 100, noNaN: true }), fc.nat(1e5), (cols, k, seed) => {
      const x = new Rng(seed).normal([3, cols], 0, 1, 'float64');
      const y = rmsNorm(x, null, 0);
      for (let r = 0; r < 3; r++) {
        let ss = 0;
        for (let j = 0; j < cols; j++) ss += y.data[r * cols + j] ** 2;
        expect(Math.sqrt(ss / cols)).toBeCloseTo(1, 10);
      }
      expectClose('scale invariance', rmsNorm(mul(x, k), null, 0).data, y.data, 1e-12, 1e-10);
    }), RUNS);
  });

  it('names the weight shape it expected', () => {
    const rng = new Rng(0);
    expect(() => rmsNorm(rng.normal([2, 4]), rng.normal([3]))).toThrow(/weight must be \(4\)/);
  });
});

describe('rotary op and the 2-D angle table', () => {
  it('passes gradcheck and preserves every pair norm; angle 0 is the identity', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.nat(1e5), (h, w, seed) => {
      const rng = new Rng(seed);
      const ang = rope2dAngles(h, w, 8);
      const x = rng.normal([2, h * w, 2, 8], 0, 1, 'float64');
      const r = gradcheck((xx) => rotary(xx, ang), [x]);
      expect(r.ok, r.message).toBe(true);
      const y = rotary(x, ang);
      for (let i = 0; i < x.size; i += 2) {
        expect(Math.hypot(y.data[i], y.data[i + 1])).toBeCloseTo(Math.hypot(x.data[i], x.data[i + 1]), 10);
      }
      // token 0 sits at (0, 0): its angles are 0, the rotation is the identity there
      for (let j = 0; j < 2 * 8; j++) expect(y.data[j]).toBe(x.data[j]);
    }), RUNS);
  });

  it('makes q·k depend on the positions only through their difference (relative positions)', () => {
    const rng = new Rng(4);
    const d = 8, ang = rope2dAngles(4, 4, d);
    const q = rng.normal([1, 1, 1, d], 0, 1, 'float64'), k = rng.normal([1, 1, 1, d], 0, 1, 'float64');
    const at = (t: Tensor, tok: number): Tensor => rotary(t, ang.subarray(tok * d / 2, (tok + 1) * d / 2));
    const dot = (a: Tensor, b: Tensor): number => { let s = 0; for (let i = 0; i < a.size; i++) s += a.data[i] * b.data[i]; return s; };
    // tokens (0,0)->(1,1) and (2,1)->(3,2): the same offset on the 4×4 grid (uniform spacing 16/3)
    expect(dot(at(q, 0), at(k, 5))).toBeCloseTo(dot(at(q, 9), at(k, 14)), 10);
  });

  it('rejects a head dim that is not a multiple of 4', () => {
    expect(() => rope2dAngles(2, 2, 6)).toThrow(/multiple of 4/);
  });
});

describe('SwiGLU and RopeAttention as functions of their weights', () => {
  it('pass gradcheck w.r.t. the input and every weight (float64)', () => {
    const rng = new Rng(3);
    const f64 = (shape: number[], std = 0.5): Tensor => rng.normal(shape, 0, std, 'float64');
    expect(swigluHidden(12)).toBe(8);
    const g = gradcheck(swiglu, [f64([2, 3, 5], 1), f64([8, 5]), f64([8, 5]), f64([5, 8])]);
    expect(g.ok, g.message).toBe(true);
    const ang = rope2dAngles(2, 3, 8);
    for (const bias of [true, false]) {
      const a = gradcheck((x, qkvW, qkvB, qNorm, kNorm, projW, projB) => ropeAttention(x, { qkvW, qkvB: bias ? qkvB : null, qNorm, kNorm, projW, projB, eps: 1e-6 }, 2, ang),
        [f64([2, 6, 16], 1), f64([48, 16]), f64([48]), rng.normal([8], 1, 0.3, 'float64'), rng.normal([8], 1, 0.3, 'float64'), f64([16, 16]), f64([16])], bias ? {} : { skip: [2] });
      expect(a.ok, a.message).toBe(true);
    }
  });

  it('qkNormRope on the packed projection = rmsNorm then rotary on the q and k slices (forward, every gradient); gradcheck', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), fc.boolean(), fc.boolean(), fc.nat(1e5), (b, heads, norm, rot, seed) => {
      const rng = new Rng(seed), d = 8, n = 6;
      const ang = rot ? rope2dAngles(2, 3, d) : null;
      const inputs = [rng.normal([b, n, 3 * heads * d], 0, 1, 'float64'), rng.normal([d], 1, 0.3, 'float64'), rng.normal([d], 1, 0.3, 'float64')];
      const fused = (qkv: Tensor, qw: Tensor, kw: Tensor): Tensor => qkNormRope(qkv, heads, norm ? qw : null, norm ? kw : null, 1e-6, ang);
      const composite = (qkv: Tensor, qw: Tensor, kw: Tensor): Tensor => {
        const p = reshape(qkv, [b, n, 3, heads, d]);
        const part = (i: number, w: Tensor): Tensor => {
          let t = reshape(slice(p, 2, i, i + 1), [b, n, heads, d]);
          if (norm) t = rmsNorm(t, w, 1e-6);
          if (ang) t = rotary(t, ang);
          return reshape(t, [b, n, 1, heads, d]);
        };
        return reshape(concat([part(0, qw), part(1, kw), slice(p, 2, 2, 3)], 2), [b, n, 3 * heads * d]);
      };
      const run = (f: (...xs: Tensor[]) => Tensor) => {
        const xs = inputs.map((x) => cast(x, 'float64').requireGrad());
        const tape = new Tape();
        const y = withTape(tape, () => f(...xs));
        backward([[y, new Rng(3).normal(y.shape, 0, 1, 'float64')]], { tape });
        return { y, g: xs.map((x) => x.grad) };
      };
      const a = run(fused as never), c = run(composite as never);
      expectClose('qkNormRope forward', a.y.data, c.y.data, 1e-12, 1e-10);
      a.g.forEach((g, i) => { if (g || c.g[i]) expectClose(`qkNormRope grad ${i}`, g!.data, c.g[i]!.data, 1e-12, 1e-10); });
      const r = gradcheck(fused, inputs, norm ? {} : { skip: [1, 2] });
      expect(r.ok, r.message).toBe(true);
    }), { numRuns: 8, seed: 14 });
  });

  it('ropeAttention (fused) = ropeAttentionComposite', () => {
    const rng = new Rng(6);
    const ang = rope2dAngles(2, 3, 8);
    const w = { qkvW: rng.normal([48, 16], 0, 0.5, 'float64'), qkvB: null, qNorm: rng.normal([8], 1, 0.3, 'float64'), kNorm: rng.normal([8], 1, 0.3, 'float64'), projW: rng.normal([16, 16], 0, 0.5, 'float64'), projB: rng.normal([16], 0, 0.5, 'float64'), eps: 1e-6 };
    const x = rng.normal([2, 6, 16], 0, 1, 'float64');
    expectClose('fused vs composite', ropeAttention(x, w, 2, ang).data, ropeAttentionComposite(x, w, 2, ang).data, 1e-12, 1e-10);
  });

  it('the modules call them (RopeAttention without norms and angles = plain attention without qkv bias)', () => {
    const rng = new Rng(8);
    const att = new RopeAttention(8, 2, rng, { qkNorm: false });
    expect(att.q_norm).toBeNull();
    const x = rng.normal([1, 3, 8]);
    const qkv = linear(x, att.qkv.weight);
    expectClose('plain', att.forward(x, null).data, linear(qkvAttention(qkv, 2), att.proj.weight, att.proj.bias).data, 1e-6, 1e-5);
  });
});

describe('parity with PyTorch (float32 here, 1e-5 relative)', () => {
  const { tensors, metadata } = readSafetensors(FIX);
  const get = (k: string): Tensor => { const v = tensors.get(k); if (!v) throw new Error(`fixture: no '${k}'`); return cast(v, 'float32'); };
  const weights = (prefix: string): Map<string, Tensor> => new Map([...tensors].filter(([n]) => n.startsWith(`${prefix}.w.`)).map(([n]) => [n.slice(prefix.length + 3), get(n)]));

  function check(prefix: string, m: Module | null, f: (x: Tensor) => Tensor): void {
    if (m) m.loadStateDict(weights(prefix));
    const x = get(`${prefix}.x`).requireGrad();
    const tape = new Tape();
    const y = withTape(tape, () => f(x));
    expectParity(`${prefix} out`, y.data, get(`${prefix}.out`).data);
    backward([[y, get(`${prefix}.cot`)]], { tape });
    expectParity(`${prefix} grad x`, x.grad!.data, get(`${prefix}.grad.x`).data);
    for (const [n, p] of m?.namedParameters() ?? []) expectParity(`${prefix} grad ${n}`, p.grad!.data, get(`${prefix}.grad.${n}`).data);
  }

  it('fixture format', () => { expect(metadata.format).toBe('diffactor-ddt-pieces-parity'); });
  it('RMSNorm', () => { const m = new RMSNorm(8); check('rms', m, (x) => m.forward(x)); });
  it('SwiGLU', () => { const m = new SwiGLU(6, 10, new Rng(0)); check('glu', m, (x) => m.forward(x)); });
  it('2-D RoPE angles and rotation', () => {
    const ang = rope2dAngles(3, 4, 8);
    expectParity('angles', ang, tensors.get('rope.angles')!.data);
    check('rope', null, (x) => rotary(x, ang));
  });
  it('q/k-norm RoPE attention', () => {
    const m = new RopeAttention(16, 2, new Rng(0));
    const ang = rope2dAngles(3, 4, 8);
    check('attn', m, (x) => m.forward(x, ang));
  });
});

describe('sanity of the contraction', () => {
  it('sum of the weighted output equals the tape value', () => {
    const x = tensor([1, 2, 3, 4], [1, 4], 'float64');
    expect(sum(rmsNorm(x)).data[0]).toBeCloseTo([1, 2, 3, 4].reduce((s, v) => s + v, 0) / Math.sqrt(7.5 + 1e-6), 8);
  });
});
