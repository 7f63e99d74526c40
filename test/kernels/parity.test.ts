// Parity of the native non-GEMM kernels (native/src/kernels_*.cc) with the TypeScript reference
// kernels (src/kernels/js, run on float64 copies of the same float32 inputs), on every SIMD path
// this CPU has (avx512, avx2, scalar, switched with the addon's setIsa): random shapes from
// fast-check with sizes off the vector widths, size-1 dims, attention with N > 256 (two key
// blocks), null optional arrays, extreme activation inputs; then determinism (repeat calls and a
// one-thread child process give bit-identical results) and argument errors.
// Calls go to the raw addon functions, never through the wrapper's JS fallback, so a missing
// native function fails here instead of silently comparing JS with JS. GEMM is in gemm.test.ts.
//
// Tolerances (|native - ref| <= atol + rtol |ref|) are stated per kernel below; they are 5-10x
// the largest difference measured on every ISA over these cases (float32 sums of <= ~300 terms,
// a ~2-ulp vector exp, NR erfc with relative error 1.2e-7): e.g. attention 5.4e-7 abs, layer
// norm y 3.3e-6 (float32 mean of values near 3), activations 2.1e-7 abs away from |y| ~ 40.
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { jsKernels } from '../../src/kernels/js/index.ts';
import { Act, type ActCode } from '../../src/kernels/types.ts';
import { loadAddon, addonPath } from '../../src/kernels/native.ts';
import { expectClose, fillRandom } from './expectClose.ts';

const { addon, reason } = loadAddon();
const ISAS = ['avx512', 'avx2', 'scalar'] as const;
type Isa = (typeof ISAS)[number];
const best = addon?.isa() as Isa | undefined;
const paths: Isa[] = addon && best ? ISAS.slice(ISAS.indexOf(best)) : [];

// The raw native functions, typed like the Kernels methods they implement.
type K = typeof jsKernels;
const nat = addon as unknown as K;

const f32 = (len: number, seed: number, lo = -1, hi = 1): Float32Array => fillRandom(new Float32Array(len), seed, lo, hi);
const f64 = (a: Float32Array): Float64Array => Float64Array.from(a);
const opts = (seed: number, numRuns = 12) => ({ seed, numRuns });

describe.runIf(addon !== null)(`native kernel parity (addon: ${reason ?? 'loaded'})`, () => {
  afterAll(() => { if (best) addon!.setIsa(best); });

  it('the addon exports every kernel natively', () => {
    for (const name of Object.keys(jsKernels).filter((n) => n !== 'name')) {
      expect(typeof (addon as Record<string, unknown>)[name], name).toBe('function');
    }
  });

  for (const isa of paths) {
    describe(`isa ${isa}`, () => {
      const use = () => expect(addon!.setIsa(isa)).toBe(isa);

      // Attention: out and gradients atol 5e-6 rtol 1e-5, lse atol 1e-5 (values up to ~7).
      function attentionCase(bh: number, n: number, d: number, seed: number): void {
        const len = bh * n * d, scale = 1 / Math.sqrt(d) + (seed % 7) * 0.05;
        const q = f32(len, seed, -2, 2), k = f32(len, seed + 1, -2, 2), v = f32(len, seed + 2), dout = f32(len, seed + 3);
        const out = new Float32Array(len).fill(NaN), lse = new Float32Array(bh * n).fill(NaN);
        nat.attentionForward(q, k, v, out, lse, bh, n, d, scale);
        const rOut = new Float64Array(len), rLse = new Float64Array(bh * n);
        jsKernels.attentionForward(f64(q), f64(k), f64(v), rOut, rLse, bh, n, d, scale);
        const tag = `${isa} attention (bh ${bh}, n ${n}, d ${d})`;
        expectClose(`${tag} out`, out, rOut, 5e-6, 1e-5);
        expectClose(`${tag} lse`, lse, rLse, 1e-5, 0);
        const dq = new Float32Array(len).fill(NaN), dk = new Float32Array(len).fill(NaN), dv = new Float32Array(len).fill(NaN);
        nat.attentionBackward(q, k, v, out, lse, dout, dq, dk, dv, bh, n, d, scale);
        const rdq = new Float64Array(len), rdk = new Float64Array(len), rdv = new Float64Array(len);
        jsKernels.attentionBackward(f64(q), f64(k), f64(v), rOut, rLse, f64(dout), rdq, rdk, rdv, bh, n, d, scale);
        expectClose(`${tag} dq`, dq, rdq, 5e-6, 1e-5);
        expectClose(`${tag} dk`, dk, rdk, 5e-6, 1e-5);
        expectClose(`${tag} dv`, dv, rdv, 5e-6, 1e-5);
      }

      it('attention forward/backward on random small shapes', () => {
        use();
        fc.assert(fc.property(
          fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 37 }), fc.nat(1e6),
          (bh, n, d, seed) => attentionCase(bh, n, d, seed),
        ), opts(101));
      });

      it('attention with N = 300 (two key blocks, online softmax) and head dim 64', () => {
        use();
        attentionCase(2, 300, 17, 7);
        attentionCase(1, 257, 64, 8);
        attentionCase(3, 64, 64, 9);
      });

      // kernels_attention.cc's fast paths: 16 x 16 register transposes of K/V blocks on AVX-512
      // (full tiles plus key-row and head-dim edges), and the backward in place (D a multiple of
      // the vector width, N of 4) against padded copies (N or D off those multiples).
      it('attention on the transpose tiles and in-place backward shapes', () => {
        use();
        attentionCase(2, 48, 32, 10);   // tiles only, in place
        attentionCase(1, 100, 48, 11);  // key rows past the last tile (100 = 6*16 + 4), in place
        attentionCase(2, 64, 80, 12);   // 5 tiles along D
        attentionCase(1, 35, 40, 13);   // N off 4: padded copies; D = 2.5 tiles on AVX-512
        attentionCase(2, 16, 24, 14);   // D a multiple of 8 (AVX2 in place), not of 16
        attentionCase(1, 272, 16, 15);  // two key blocks in place, the second 16 rows
      });

      it('layer norm forward/backward (affine or null weight/bias, dweight/dbias or null)', () => {
        use();
        fc.assert(fc.property(
          fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 99 }), fc.boolean(), fc.boolean(), fc.boolean(), fc.nat(1e6),
          (rows, cols, hasW, hasB, wantGrads, seed) => {
            const len = rows * cols, tag = `${isa} layernorm (${rows}x${cols} w:${hasW} b:${hasB})`;
            // An offset mean (3) checks the two-pass variance.
            const x = f32(len, seed, 2, 4), dy = f32(len, seed + 1);
            const w = hasW ? f32(cols, seed + 2, 0.5, 1.5) : null, b = hasB ? f32(cols, seed + 3) : null;
            const y = new Float32Array(len).fill(NaN), mean = new Float32Array(rows), rstd = new Float32Array(rows);
            nat.layerNormForward(x, w, b, y, mean, rstd, rows, cols, 1e-5);
            const ry = new Float64Array(len), rm = new Float64Array(rows), rs = new Float64Array(rows);
            jsKernels.layerNormForward(f64(x), w && f64(w), b && f64(b), ry, rm, rs, rows, cols, 1e-5);
            expectClose(`${tag} y`, y, ry, 3e-5, 0);
            expectClose(`${tag} mean`, mean, rm, 1e-5, 0);
            expectClose(`${tag} rstd`, rstd, rs, 3e-6, 1e-6); // cols = 1: rstd = 1/sqrt(eps) = 316
            const dx = new Float32Array(len).fill(NaN);
            const dw = wantGrads ? new Float32Array(cols).fill(NaN) : null, db = wantGrads ? new Float32Array(cols).fill(NaN) : null;
            nat.layerNormBackward(dy, x, w, mean, rstd, dx, dw, db, rows, cols);
            const rdx = new Float64Array(len), rdw = new Float64Array(cols), rdb = new Float64Array(cols);
            jsKernels.layerNormBackward(f64(dy), f64(x), w && f64(w), f64(mean), f64(rstd), rdx, rdw, rdb, rows, cols);
            // dx scales with rstd: cols = 1 gives rstd = 1/sqrt(eps) = 316 and dx = 0 up to rounding.
            expectClose(`${tag} dx`, dx, rdx, 4e-6 * Math.max(1, Math.max(...rstd) / 2), 0);
            if (dw && db) {
              expectClose(`${tag} dweight`, dw, rdw, 2e-6, 1e-6);
              expectClose(`${tag} dbias`, db, rdb, 1e-6, 1e-6);
            }
          },
        ), opts(102, 20));
      });

      it('layer norm backward with many rows (256 fixed row blocks of partial sums)', () => {
        use();
        const rows = 9000, cols = 19, len = rows * cols;
        const x = f32(len, 3), dy = f32(len, 4), w = f32(cols, 5);
        const y = new Float32Array(len), mean = new Float32Array(rows), rstd = new Float32Array(rows);
        nat.layerNormForward(x, w, null, y, mean, rstd, rows, cols, 1e-6);
        const dx = new Float32Array(len), dw = new Float32Array(cols), db = new Float32Array(cols);
        nat.layerNormBackward(dy, x, w, mean, rstd, dx, dw, db, rows, cols);
        const rdx = new Float64Array(len), rdw = new Float64Array(cols), rdb = new Float64Array(cols);
        jsKernels.layerNormBackward(f64(dy), f64(x), f64(w), f64(mean), f64(rstd), rdx, rdw, rdb, rows, cols);
        expectClose(`${isa} layernorm big dx`, dx, rdx, 4e-6, 0);
        expectClose(`${isa} layernorm big dweight`, dw, rdw, 1e-5, 1e-6);
        expectClose(`${isa} layernorm big dbias`, db, rdb, 1e-5, 1e-6);
      });

      it('softmax forward/backward (y atol 7e-7, dx atol 4e-7; rtol 1e-6), large logits', () => {
        use();
        fc.assert(fc.property(
          fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 300 }), fc.constantFrom(1, 30), fc.nat(1e6),
          (rows, cols, spread, seed) => {
            const len = rows * cols, tag = `${isa} softmax (${rows}x${cols}, spread ${spread})`;
            const x = f32(len, seed, -spread, spread), dy = f32(len, seed + 1);
            x[0] = 1000; // a huge logit must not overflow
            const y = new Float32Array(len).fill(NaN);
            nat.softmaxForward(x, y, rows, cols);
            const ry = new Float64Array(len);
            jsKernels.softmaxForward(f64(x), ry, rows, cols);
            expectClose(`${tag} y`, y, ry, 7e-7, 1e-6);
            const dx = new Float32Array(len).fill(NaN), rdx = new Float64Array(len);
            nat.softmaxBackward(y, dy, dx, rows, cols);
            jsKernels.softmaxBackward(f64(y), f64(dy), rdx, rows, cols);
            expectClose(`${tag} dx`, dx, rdx, 4e-7, 1e-6);
          },
        ), opts(103));
      });

      // Activations: atol 1e-6, rtol 1e-6 (the abs error grows with |y| up to ~40).
      const kinds: [string, ActCode][] = [['relu', Act.relu], ['gelu', Act.gelu], ['geluTanh', Act.geluTanh], ['silu', Act.silu], ['none', Act.none]];
      for (const [name, kind] of kinds) {
        it(`${name} forward/backward, lengths off the vector width, inputs up to +-40`, () => {
          use();
          fc.assert(fc.property(fc.integer({ min: 1, max: 5000 }), fc.constantFrom(1, 6, 40), fc.nat(1e6), (len, spread, seed) => {
            const x = f32(len, seed, -spread, spread), dy = f32(len, seed + 1);
            x[0] = 0;
            if (len > 2) { x[1] = -spread; x[2] = spread; }
            const y = new Float32Array(len).fill(NaN), dx = new Float32Array(len).fill(NaN);
            nat.actForward(kind, x, y, len);
            nat.actBackward(kind, x, dy, dx, len);
            const ry = new Float64Array(len), rdx = new Float64Array(len);
            jsKernels.actForward(kind, f64(x), ry, len);
            jsKernels.actBackward(kind, f64(x), f64(dy), rdx, len);
            expectClose(`${isa} ${name} y (len ${len})`, y, ry, 1e-6, 1e-6);
            expectClose(`${isa} ${name} dx (len ${len})`, dx, rdx, 1e-6, 1e-6);
          }), opts(104));
        });
      }

      // Below x = -6 the float64 reference itself loses relative accuracy (1 + erf cancels:
      // Phi(-6) = 1e-9 against 1e-16 rounding), so the tail checked here stops at -6.
      it('gelu keeps relative accuracy in the negative tail (x in [-6, -3])', () => {
        use();
        const len = 1000, x = f32(len, 11, -6, -3), y = new Float32Array(len), ry = new Float64Array(len);
        nat.actForward(Act.gelu, x, y, len);
        jsKernels.actForward(Act.gelu, f64(x), ry, len);
        expectClose(`${isa} gelu tail`, y, ry, 0, 3e-6);
      });

      it('modulate forward/backward (atol 1e-6 rtol 1e-5)', () => {
        use();
        fc.assert(fc.property(
          fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 150 }), fc.nat(1e6),
          (b, n, c, seed) => {
            const len = b * n * c, tag = `${isa} modulate (${b},${n},${c})`;
            const x = f32(len, seed), sh = f32(b * c, seed + 1), sc = f32(b * c, seed + 2), dy = f32(len, seed + 3);
            const y = new Float32Array(len).fill(NaN), ry = new Float64Array(len);
            nat.modulateForward(x, sh, sc, y, b, n, c);
            jsKernels.modulateForward(f64(x), f64(sh), f64(sc), ry, b, n, c);
            expectClose(`${tag} y`, y, ry, 7e-7, 1e-6);
            const dx = new Float32Array(len).fill(NaN), dsh = new Float32Array(b * c).fill(NaN), dsc = new Float32Array(b * c).fill(NaN);
            nat.modulateBackward(dy, x, sc, dx, dsh, dsc, b, n, c);
            const rdx = new Float64Array(len), rdsh = new Float64Array(b * c), rdsc = new Float64Array(b * c);
            jsKernels.modulateBackward(f64(dy), f64(x), f64(sc), rdx, rdsh, rdsc, b, n, c);
            expectClose(`${tag} dx`, dx, rdx, 1e-6, 1e-5);
            expectClose(`${tag} dshift`, dsh, rdsh, 1e-6, 1e-6);
            expectClose(`${tag} dscale`, dsc, rdsc, 1e-6, 1e-6);
          },
        ), opts(105));
      });

      it('reduceSum (inner 1 and > 1) and sumSquares, double accumulation', () => {
        use();
        fc.assert(fc.property(
          fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1, max: 150 }), fc.boolean(), fc.nat(1e6),
          (outer, len, inner0, flat, seed) => {
            const inner = flat ? 1 : inner0, tag = `${isa} reduceSum (${outer},${len},${inner})`;
            const x = f32(outer * len * inner, seed);
            const out = new Float32Array(outer * inner).fill(NaN), ref = new Float64Array(outer * inner);
            nat.reduceSum(x, out, outer, len, inner);
            jsKernels.reduceSum(f64(x), ref, outer, len, inner);
            // out is float32: one rounding of the double sum.
            expectClose(tag, out, Float32Array.from(ref), 0, 0);
            const ss = nat.sumSquares(x, x.length), rss = jsKernels.sumSquares(f64(x), x.length);
            expectClose(`${isa} sumSquares (${x.length})`, [ss], [rss], 0, 1e-13);
          },
        ), opts(106));
        // Large: several 64K chunks, and float32 accumulation would be visibly off.
        const n = 300_001, x = new Float32Array(n).fill(1 + 2 ** -12);
        expectClose(`${isa} sumSquares large`, [nat.sumSquares(x, n)], [jsKernels.sumSquares(f64(x), n)], 0, 1e-13);
        const out = new Float32Array(1);
        nat.reduceSum(x, out, 1, n, 1);
        expectClose(`${isa} reduceSum large`, out, [Math.fround(n * (1 + 2 ** -12))], 0, 0);
      });

      it('adamw (3 steps) and ema vs the float64 reference (rtol 2e-6 of the update scale)', () => {
        use();
        fc.assert(fc.property(fc.integer({ min: 1, max: 40000 }), fc.nat(1e6), fc.double({ min: 0, max: 0.1, noNaN: true }), (len, seed, wd) => {
          const lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
          const p = f32(len, seed), m = new Float32Array(len), v = new Float32Array(len);
          const rp = f64(p), rm = new Float64Array(len), rv = new Float64Array(len);
          for (let step = 1; step <= 3; step++) {
            const g = f32(len, seed + step, -0.1, 0.1);
            g[0] = 0; // zero gradient: the update is 0 / (0 + eps)
            nat.adamw(p, g, m, v, len, lr, b1, b2, eps, wd, step);
            jsKernels.adamw(rp, f64(g), rm, rv, len, lr, b1, b2, eps, wd, step);
          }
          // Each step moves p by at most ~lr; allow 1e-3 of that (float32 of p itself is ~6e-8).
          expectClose(`${isa} adamw p (len ${len})`, p, rp, 1e-6, 2e-6);
          // m and v can cancel to ~0; their absolute error is a float32 ulp of the terms (|m| <= 0.1).
          expectClose(`${isa} adamw m`, m, rm, 1e-8, 1e-5);
          expectClose(`${isa} adamw v`, v, rv, 1e-11, 1e-5);
          const t = f32(len, seed + 9), s = f32(len, seed + 10), rt = f64(t);
          nat.ema(t, s, len, 0.999);
          jsKernels.ema(rt, f64(s), len, 0.999);
          expectClose(`${isa} ema`, t, rt, 1e-7, 1e-6);
        }), opts(107, 8));
      });
    });
  }

  it('results are bit-identical on repeat calls and with a one-thread pool (child process)', () => {
    // The child loads the addon with DIFFACTOR_THREADS=1 and prints a digest of every output;
    // the same script runs here (pool of PoolSize threads, dynamic task hand-out).
    const script = `
      const a = require(${JSON.stringify(addonPath)});
      const rnd = (n, s) => { const x = new Float32Array(n); let t = s >>> 0;
        for (let i = 0; i < n; i++) { t = (Math.imul(t, 1664525) + 1013904223) >>> 0; x[i] = t / 2 ** 31 - 1; } return x; };
      const h = (x) => { let s = 0; const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
        for (let i = 0; i < u.length; i++) s = (Math.imul(s, 31) + u[i]) >>> 0; return s; };
      const bh = 6, n = 130, d = 24, len = bh * n * d, q = rnd(len, 1), k = rnd(len, 2), v = rnd(len, 3), go = rnd(len, 4);
      const o = new Float32Array(len), lse = new Float32Array(bh * n), dq = new Float32Array(len), dk = new Float32Array(len), dv = new Float32Array(len);
      a.attentionForward(q, k, v, o, lse, bh, n, d, 0.2);
      a.attentionBackward(q, k, v, o, lse, go, dq, dk, dv, bh, n, d, 0.2);
      const rows = 5000, cols = 33, x = rnd(rows * cols, 5), dy = rnd(rows * cols, 6), w = rnd(cols, 7);
      const y = new Float32Array(rows * cols), mean = new Float32Array(rows), rstd = new Float32Array(rows);
      a.layerNormForward(x, w, null, y, mean, rstd, rows, cols, 1e-5);
      const dx = new Float32Array(rows * cols), dw = new Float32Array(cols), db = new Float32Array(cols);
      a.layerNormBackward(dy, x, w, mean, rstd, dx, dw, db, rows, cols);
      const mdx = new Float32Array(rows * cols), dsh = new Float32Array(cols * 50), dsc = new Float32Array(cols * 50);
      a.modulateBackward(dy, x, rnd(50 * cols, 9), mdx, dsh, dsc, 50, 100, cols);
      const rs = new Float32Array(cols); a.reduceSum(x, rs, 1, rows, cols);
      const big = rnd(1000003, 8);
      console.log(JSON.stringify([h(o), h(lse), h(dq), h(dk), h(dv), h(y), h(dx), h(dw), h(db), h(mdx), h(dsh), h(dsc), h(rs), a.sumSquares(big, big.length)]));`;
    const run = (threads: string) => {
      const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, DIFFACTOR_THREADS: threads }, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
      return r.stdout.trim();
    };
    const one = run('1'), many = run(String(Math.max(2, addon!.threads()))), again = run(String(Math.max(2, addon!.threads())));
    expect(many).toBe(again);
    expect(many).toBe(one);
  });

  it('argument errors are TypeErrors that name the argument', () => {
    const x = new Float32Array(8), y = new Float32Array(8);
    expect(() => nat.softmaxForward(new Float64Array(8) as unknown as Float32Array, y, 2, 4)).toThrow(/softmaxForward: argument 'x' must be a Float32Array/);
    expect(() => nat.softmaxForward(x, y, 3, 4)).toThrow(/argument 'x' is too short/);
    expect(() => nat.layerNormForward(x, new Float32Array(2), null, y, new Float32Array(2), new Float32Array(2), 2, 4, 1e-5)).toThrow(/argument 'weight' is too short/);
    expect(() => nat.attentionForward(x, x, x, y, new Float32Array(1), 1, 2, 4, 1)).toThrow(/attentionForward: argument 'lse' is too short/);
    expect(() => nat.actForward(9 as ActCode, x, y, 8)).toThrow(/argument 'kind'/);
    expect(() => nat.adamw(x, x, x, x, 8, 1e-3, 0.9, 0.999, 1e-8, 0, 0)).toThrow(/argument 'step'/);
    expect(() => nat.ema(x, y, -1, 0.5)).toThrow(/argument 'len' must be a non-negative integer/);
    expect(() => nat.reduceSum(x, 'no' as unknown as Float32Array, 1, 8, 1)).toThrow(TypeError);
    expect(() => nat.reduceSum(x, 'no' as unknown as Float32Array, 1, 8, 1)).toThrow(/reduceSum: argument 'out'/);
    expect(() => nat.softmaxForward(x, y, 2, 4)).not.toThrow();
  });
});
