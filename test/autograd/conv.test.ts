import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gradcheck } from '../../src/autograd/index.ts';
import { conv2d, convTranspose2d } from '../../src/autograd/ops/conv.ts';
import { Rng } from '../../src/tensor/rng.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees } from './agreeF32.ts';

const seedArb = fc.integer({ min: 0, max: 10_000 });

// n, groups, channels per group in / out, h, w, kh, kw, sh, sw, ph, pw
const convArb = fc.record({
  n: fc.integer({ min: 1, max: 2 }), groups: fc.integer({ min: 1, max: 2 }),
  cg: fc.integer({ min: 1, max: 3 }), og: fc.integer({ min: 1, max: 3 }),
  h: fc.integer({ min: 1, max: 6 }), w: fc.integer({ min: 1, max: 6 }),
  kh: fc.integer({ min: 1, max: 3 }), kw: fc.integer({ min: 1, max: 3 }),
  sh: fc.integer({ min: 1, max: 3 }), sw: fc.integer({ min: 1, max: 3 }),
  ph: fc.integer({ min: 0, max: 2 }), pw: fc.integer({ min: 0, max: 2 }),
  hasBias: fc.boolean(), seed: seedArb,
});

/** Direct convolution: out[n,o,y,x] = b[o] + sum_{c,i,j} x[n, g*cg+c, y*sh-ph+i, x*sw-pw+j] w[o,c,i,j]. */
function naiveConv(x: Tensor, w: Tensor, b: Tensor | null, groups: number, [sh, sw]: number[], [ph, pw]: number[]): number[] {
  const [n, c, h, wd] = x.shape, [o, cg, kh, kw] = w.shape;
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1, ow = Math.floor((wd + 2 * pw - kw) / sw) + 1;
  const og = o / groups, out: number[] = [];
  for (let i = 0; i < n; i++) for (let oc = 0; oc < o; oc++) for (let y = 0; y < oh; y++) for (let xx = 0; xx < ow; xx++) {
    let s = b ? b.data[oc] : 0;
    const g = Math.floor(oc / og);
    for (let ci = 0; ci < cg; ci++) for (let a = 0; a < kh; a++) for (let bb = 0; bb < kw; bb++) {
      const iy = y * sh - ph + a, ix = xx * sw - pw + bb;
      if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
      s += x.data[((i * c + g * cg + ci) * h + iy) * wd + ix] * w.data[((oc * cg + ci) * kh + a) * kw + bb];
    }
    out.push(s);
  }
  return out;
}

/** Direct transposed convolution: every input pixel scatters x * w[ci, co] into the output. */
function naiveConvT(x: Tensor, w: Tensor, b: Tensor | null, groups: number, [sh, sw]: number[], [ph, pw]: number[], [oph, opw]: number[]): number[] {
  const [n, cin, h, wd] = x.shape, [, cog, kh, kw] = w.shape;
  const cout = cog * groups, cig = cin / groups;
  const oh = (h - 1) * sh - 2 * ph + kh + oph, ow = (wd - 1) * sw - 2 * pw + kw + opw;
  const out = new Array<number>(n * cout * oh * ow).fill(0);
  for (let i = 0; i < n; i++) for (let ci = 0; ci < cin; ci++) for (let y = 0; y < h; y++) for (let xx = 0; xx < wd; xx++) {
    const g = Math.floor(ci / cig), v = x.data[((i * cin + ci) * h + y) * wd + xx];
    for (let co = 0; co < cog; co++) for (let a = 0; a < kh; a++) for (let bb = 0; bb < kw; bb++) {
      const oy = y * sh - ph + a, ox = xx * sw - pw + bb;
      if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
      out[((i * cout + g * cog + co) * oh + oy) * ow + ox] += v * w.data[((ci * cog + co) * kh + a) * kw + bb];
    }
  }
  if (b) for (let t = 0; t < out.length; t++) out[t] += b.data[Math.floor(t / (oh * ow)) % cout];
  return out;
}

describe('conv2d', () => {
  it('matches a direct convolution (stride, padding, groups, bias) and passes gradcheck', () => {
    fc.assert(fc.property(
      convArb.filter((p) => p.h + 2 * p.ph >= p.kh && p.w + 2 * p.pw >= p.kw),
      (p) => {
        const rng = new Rng(p.seed);
        const x = rng.normal([p.n, p.cg * p.groups, p.h, p.w], 0, 1, 'float64');
        const w = rng.normal([p.og * p.groups, p.cg, p.kh, p.kw], 0, 1, 'float64');
        const b = p.hasBias ? rng.normal([p.og * p.groups], 0, 1, 'float64') : null;
        const opts = { stride: [p.sh, p.sw] as const, padding: [p.ph, p.pw] as const, groups: p.groups };
        const y = conv2d(x, w, b, opts);
        expectClose('conv2d', y.data, naiveConv(x, w, b, p.groups, [p.sh, p.sw], [p.ph, p.pw]), 1e-12, 1e-10);
        const r = b ? gradcheck((a, ww, bb) => conv2d(a, ww, bb, opts), [x, w, b]) : gradcheck((a, ww) => conv2d(a, ww, null, opts), [x, w]);
        expect(r.ok, r.message).toBe(true);
      }), { numRuns: 20, seed: 17 });
  });

  it('rejects a weight that does not fit the channels', () => {
    const rng = new Rng(0);
    expect(() => conv2d(rng.normal([1, 4, 3, 3]), rng.normal([2, 3, 1, 1]), null, { groups: 2 })).toThrow(/does not fit/);
  });
});

describe('convTranspose2d', () => {
  it('matches a direct scatter (stride, padding, output padding, groups, bias) and passes gradcheck', () => {
    fc.assert(fc.property(convArb, fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), (p, oph0, opw0) => {
      const oph = oph0 % p.sh, opw = opw0 % p.sw;
      const rng = new Rng(p.seed);
      const h = Math.min(p.h, 4), w = Math.min(p.w, 4); // the output grows with stride: keep gradcheck small
      const x = rng.normal([p.n, p.cg * p.groups, h, w], 0, 1, 'float64');
      const wt = rng.normal([p.cg * p.groups, p.og, p.kh, p.kw], 0, 1, 'float64');
      const b = p.hasBias ? rng.normal([p.og * p.groups], 0, 1, 'float64') : null;
      const opts = { stride: [p.sh, p.sw] as const, padding: [p.ph, p.pw] as const, outputPadding: [oph, opw] as const, groups: p.groups };
      const outH = (h - 1) * p.sh - 2 * p.ph + p.kh + oph, outW = (w - 1) * p.sw - 2 * p.pw + p.kw + opw;
      fc.pre(outH >= 1 && outW >= 1);
      const y = convTranspose2d(x, wt, b, opts);
      expect(y.shape).toEqual([p.n, p.og * p.groups, outH, outW]);
      expectClose('convTranspose2d', y.data, naiveConvT(x, wt, b, p.groups, [p.sh, p.sw], [p.ph, p.pw], [oph, opw]), 1e-12, 1e-10);
      const r = b ? gradcheck((a, ww, bb) => convTranspose2d(a, ww, bb, opts), [x, wt, b]) : gradcheck((a, ww) => convTranspose2d(a, ww, null, opts), [x, wt]);
      expect(r.ok, r.message).toBe(true);
    }), { numRuns: 20, seed: 23 });
  });

  it('is the adjoint of conv2d: <conv(x), y> = <x, convT(y)>', () => {
    const rng = new Rng(4);
    const x = rng.normal([2, 4, 7, 5], 0, 1, 'float64'), w = rng.normal([6, 2, 3, 2], 0, 1, 'float64');
    const opts = { stride: [2, 1] as const, padding: [1, 1] as const, groups: 2 };
    const y = conv2d(x, w, null, opts); // (2, 6, 4, 6)
    const u = rng.normal(y.shape, 0, 1, 'float64');
    // conv of 7 rows at stride 2 reads rows 0..6 exactly, so output padding 0 recovers (7, 5)
    const xt = convTranspose2d(u, w, null, { ...opts, outputPadding: [0, 0] });
    expect(xt.shape).toEqual(x.shape);
    const dot = (a: Tensor, b: Tensor): number => { let s = 0; for (let i = 0; i < a.size; i++) s += a.data[i] * b.data[i]; return s; };
    expect(Math.abs(dot(y, u) - dot(x, xt))).toBeLessThan(1e-9 * Math.abs(dot(y, u)) + 1e-9);
  });
});

describe('float32 path', () => {
  it('conv2d and convTranspose2d agree with float64', () => {
    const rng = new Rng(21);
    const x = rng.normal([2, 6, 9, 11], 0, 1, 'float64');
    const w = rng.normal([10, 3, 3, 3], 0, 0.3, 'float64'), b = rng.normal([10], 0, 1, 'float64');
    const tol = { atol: 2e-5, rtol: 2e-4 };
    expectF32Agrees('conv2d', (a, ww, bb) => conv2d(a, ww, bb, { stride: 2, padding: 1, groups: 2 }), [x, w, b], tol);
    const wt = rng.normal([6, 4, 4, 4], 0, 0.3, 'float64'), bt = rng.normal([8], 0, 1, 'float64');
    expectF32Agrees('convTranspose2d', (a, ww, bb) => convTranspose2d(a, ww, bb, { stride: 2, padding: 1, groups: 2, outputPadding: 1 }), [x, wt, bt], tol);
  });
});
