// nn layers: forward values against plain-loop references, PyTorch state_dict names, init
// distributions (bounds and moments), and the fused modulate op against its composite and
// finite differences. Gradients of the underlying ops are checked in test/autograd.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { add, backward, mul, unsqueeze, gradcheck, modulate } from '../../src/autograd/index.ts';
import {
  Attention, Conv2d, Embedding, LayerNorm, Linear, Mlp, PatchEmbed, Sequential, SiLU, init,
} from '../../src/nn/index.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees } from '../autograd/agreeF32.ts';

const names = (m: { namedParameters(): [string, Tensor][] }): string[] => m.namedParameters().map(([n]) => n);

/** y[r, o] = sum_i x[r, i] w[o, i] + b[o]. */
function linearRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, rows: number, inF: number, outF: number): number[] {
  const y: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
      y.push(s);
    }
  }
  return y;
}

describe('init', () => {
  it('xavierUniform stays in its bound and has the uniform variance a^2/3', () => {
    const w = new Linear(300, 200, new Rng(1)).weight;
    init.xavierUniform(w, new Rng(2));
    const a = Math.sqrt(6 / 500);
    let s2 = 0, maxAbs = 0;
    for (const v of w.data) { s2 += v * v; maxAbs = Math.max(maxAbs, Math.abs(v)); }
    expect(maxAbs).toBeLessThanOrEqual(a);
    expect(maxAbs).toBeGreaterThan(0.99 * a);
    expect(s2 / w.size).toBeCloseTo((a * a) / 3, 4);
  });

  it('fans follow torch for conv weights; the shape override gives DiT patch-conv fans', () => {
    expect(init.fans([8, 3, 2, 2])).toEqual({ fanIn: 12, fanOut: 32 });
    const w = new Conv2d(3, 8, 2, new Rng(0), { stride: 2 }).weight;
    init.xavierUniform(w, new Rng(3), 1, [8, 12]);
    const a = Math.sqrt(6 / 20);
    expect(Math.max(...w.toArray().map(Math.abs))).toBeLessThanOrEqual(a);
    expect(Math.max(...w.toArray().map(Math.abs))).toBeGreaterThan(Math.sqrt(6 / 44)); // beyond the 4-d fans' bound
  });

  it('normal has the requested moments; the same seed gives the same weights', () => {
    const w = new Linear(100, 100, new Rng(1)).weight;
    init.normal(w, new Rng(4), 0.02);
    const v = w.toArray();
    const m = v.reduce((s, u) => s + u, 0) / v.length;
    const sd = Math.sqrt(v.reduce((s, u) => s + (u - m) ** 2, 0) / v.length);
    expect(Math.abs(m)).toBeLessThan(0.001);
    expect(sd).toBeCloseTo(0.02, 3);
    expect(new Linear(7, 5, new Rng(9)).weight.toArray()).toEqual(new Linear(7, 5, new Rng(9)).weight.toArray());
  });

  it('Linear default init is U(+-1/sqrt(in)) for weight and bias', () => {
    const l = new Linear(64, 256, new Rng(5));
    const bound = 1 / 8;
    for (const t of [l.weight, l.bias!]) {
      const mx = Math.max(...t.toArray().map(Math.abs));
      expect(mx).toBeLessThanOrEqual(bound);
      expect(mx).toBeGreaterThan(0.9 * bound);
    }
  });
});

describe('layers', () => {
  it('Linear matches x W^T + b; names weight/bias; bias can be off', () => {
    const l = new Linear(5, 3, new Rng(1));
    const x = new Rng(2).normal([2, 4, 5]);
    const y = l.forward(x);
    expect(y.shape).toEqual([2, 4, 3]);
    expectClose('linear', y.data, linearRef(x.data, l.weight.data, l.bias!.data, 8, 5, 3), 1e-5, 1e-5);
    expect(names(l)).toEqual(['weight', 'bias']);
    expect(names(new Linear(5, 3, new Rng(1), { bias: false }))).toEqual(['weight']);
  });

  it('LayerNorm without affine has no parameters and normalises each row (eps 1e-6)', () => {
    const ln = new LayerNorm(6, { elementwiseAffine: false, eps: 1e-6 });
    expect(names(ln)).toEqual([]);
    const x = new Rng(3).normal([3, 6], 2, 3);
    const y = ln.forward(x);
    const ref: number[] = [];
    for (let r = 0; r < 3; r++) {
      const row = x.toArray().slice(r * 6, r * 6 + 6);
      const m = row.reduce((a, b) => a + b, 0) / 6;
      const v = row.reduce((a, b) => a + (b - m) ** 2, 0) / 6;
      ref.push(...row.map((u) => (u - m) / Math.sqrt(v + 1e-6)));
    }
    expectClose('layernorm', y.data, ref, 1e-5, 1e-5);
    const affine = new LayerNorm(6);
    expect(names(affine)).toEqual(['weight', 'bias']);
    expect(affine.weight!.toArray()).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('Embedding looks up rows for any index shape and scatters gradients back', () => {
    const e = new Embedding(4, 3, new Rng(1));
    const idx = tensor([3, 0, 3, 1], [2, 2]);
    const y = e.forward(idx);
    expect(y.shape).toEqual([2, 2, 3]);
    const rows = [3, 0, 3, 1].flatMap((i) => e.weight.toArray().slice(i * 3, i * 3 + 3));
    expect(y.toArray()).toEqual(rows);
    expect(e.forward([2]).shape).toEqual([1, 3]);
    // d table[i] = sum of the cotangent rows that looked up i (row 3 twice, row 2 never)
    const w = new Rng(2).normal([2, 2, 3]);
    backward([[y, w]]);
    const want = new Array<number>(12).fill(0);
    [3, 0, 3, 1].forEach((i, k) => { for (let c = 0; c < 3; c++) want[i * 3 + c] += w.data[k * 3 + c]; });
    expectClose('embedding grad', e.weight.grad!.data, want, 1e-6, 1e-6);
  });

  it('Mlp is fc2(act(fc1 x)) with timm names', () => {
    const m = new Mlp(4, 8, new Rng(1), { act: 'gelu_tanh' });
    expect(names(m)).toEqual(['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);
    const x = new Rng(2).normal([3, 4]);
    const h = linearRef(x.data, m.fc1.weight.data, m.fc1.bias!.data, 3, 4, 8)
      .map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    expectClose('mlp', m.forward(x).data, linearRef(h, m.fc2.weight.data, m.fc2.bias!.data, 3, 8, 4), 1e-5, 1e-5);
  });

  it('Attention equals per-head softmax(q k^T / sqrt(d)) v then proj, with timm names', () => {
    const [b, n, dim, heads] = [2, 5, 12, 3];
    const d = dim / heads;
    const a = new Attention(dim, heads, new Rng(1), { qkvBias: true });
    expect(names(a)).toEqual(['qkv.weight', 'qkv.bias', 'proj.weight', 'proj.bias']);
    expect(names(new Attention(dim, heads, new Rng(1)))).toEqual(['qkv.weight', 'proj.weight', 'proj.bias']);
    const x = new Rng(2).normal([b, n, dim]);
    const qkv = linearRef(x.data, a.qkv.weight.data, a.qkv.bias!.data, b * n, dim, 3 * dim); // (B*N, 3D): [q | k | v], heads inside
    const merged: number[] = [];
    for (let bi = 0; bi < b; bi++) {
      for (let i = 0; i < n; i++) {
        for (let h = 0; h < heads; h++) {
          const at = (which: number, tok: number, c: number): number => qkv[(bi * n + tok) * 3 * dim + which * dim + h * d + c];
          const logits = Array.from({ length: n }, (_, j) => {
            let s = 0;
            for (let c = 0; c < d; c++) s += at(0, i, c) * at(1, j, c);
            return s / Math.sqrt(d);
          });
          const mx = Math.max(...logits);
          const p = logits.map((l) => Math.exp(l - mx));
          const z = p.reduce((u, v) => u + v, 0);
          for (let c = 0; c < d; c++) merged.push(p.reduce((s, pj, j) => s + (pj / z) * at(2, j, c), 0));
        }
      }
    }
    expectClose('attention', a.forward(x).data, linearRef(merged, a.proj.weight.data, a.proj.bias!.data, b * n, dim, dim), 1e-5, 1e-4);
  });

  it('PatchEmbed is a Linear on each patch flattened (c, py, px), tokens in (row, col) order', () => {
    const [b, c, hh, ww, p, dim] = [2, 3, 4, 6, 2, 5];
    const pe = new PatchEmbed(c, dim, p, new Rng(1));
    expect(names(pe)).toEqual(['proj.weight', 'proj.bias']);
    const x = new Rng(2).normal([b, c, hh, ww]);
    const y = pe.forward(x);
    const gh = hh / p, gw = ww / p;
    expect(y.shape).toEqual([b, gh * gw, dim]);
    const patches: number[] = [];
    for (let bi = 0; bi < b; bi++) {
      for (let r = 0; r < gh; r++) {
        for (let q = 0; q < gw; q++) {
          for (let ch = 0; ch < c; ch++) {
            for (let py = 0; py < p; py++) {
              for (let px = 0; px < p; px++) patches.push(x.data[((bi * c + ch) * hh + r * p + py) * ww + q * p + px]);
            }
          }
        }
      }
    }
    expectClose('patchembed', y.data, linearRef(patches, pe.proj.weight.data, pe.proj.bias!.data, b * gh * gw, c * p * p, dim), 1e-5, 1e-5);
  });

  it('Sequential names children by index and skips nothing', () => {
    const s = new Sequential([SiLU(), new Linear(3, 2, new Rng(0))]);
    expect(names(s)).toEqual(['1.weight', '1.bias']);
    const x = tensor([1, -2, 0.5], [1, 3]);
    const sx = x.toArray().map((v) => v / (1 + Math.exp(-v)));
    const lin = s.at<Linear>(1);
    expectClose('sequential', s.forward(x).data, linearRef(sx, lin.weight.data, lin.bias!.data, 1, 3, 2), 1e-6, 1e-5);
  });
});

describe('modulate', () => {
  const composite = (x: Tensor, shift: Tensor, scale: Tensor): Tensor => add(mul(x, add(unsqueeze(scale, 1), 1)), unsqueeze(shift, 1));

  it('equals x * (1 + scale) + shift broadcast over tokens, forward and gradients', () => {
    const rng = new Rng(11);
    const x = rng.normal([2, 3, 4], 0, 1, 'float64'), sh = rng.normal([2, 4], 0, 1, 'float64'), sc = rng.normal([2, 4], 0, 1, 'float64');
    const r = gradcheck(modulate, [x, sh, sc]);
    expect(r.ok, r.message).toBe(true);
    const rc = gradcheck(composite, [x, sh, sc]);
    expect(rc.ok, rc.message).toBe(true);
    expectClose('modulate vs composite', modulate(x, sh, sc).data, composite(x, sh, sc).data, 1e-14, 0);
    expectF32Agrees('modulate', modulate, [x, sh, sc], { atol: 1e-5, rtol: 1e-5 });
  });

  it('rejects mis-shaped shift/scale', () => {
    const rng = new Rng(1);
    expect(() => modulate(rng.normal([2, 3, 4]), rng.normal([2, 3]), rng.normal([2, 4]))).toThrow(/shift must be \(2, 4\)/);
  });
});
