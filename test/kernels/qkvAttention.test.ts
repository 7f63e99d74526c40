// Attention on the packed qkv layout: the TypeScript reference against per-head attention on
// explicitly gathered q, k, v (the permute/slice composite), then the native kernel (the flash
// kernel of kernels_attention.cc reading q, k, v in place through row strides) against the
// reference on every SIMD path: random shapes, N over several 64-row query blocks and off
// multiples of 16, D = 64 as in SiT, the transpose-tile edges, 64 and 256 tokens and odd token
// counts; bit-identity with the same kernel on the plain (B*H, N, D) layout (where these shapes
// take the in-place backward or the padded copies; the packed layout always copies) and with a
// one-thread pool. The PyTorch fixture is
// test/autograd/qkvAttentionTorch.test.ts.
// Tolerances: native float32 vs float64 reference out/dqkv 5e-6 abs + 1e-5 rel, lse 1e-5 abs
// (the generic attention kernel's, parity.test.ts).
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { jsKernels } from '../../src/kernels/js/index.ts';
import { loadAddon, addonPath } from '../../src/kernels/native.ts';
import { expectClose, fillRandom } from './expectClose.ts';

const { addon, reason } = loadAddon();
const ISAS = ['avx512', 'avx2', 'scalar'] as const;
type Isa = (typeof ISAS)[number];
const best = addon?.isa() as Isa | undefined;
const paths: Isa[] = addon && best ? ISAS.slice(ISAS.indexOf(best)) : [];
const nat = addon as unknown as typeof jsKernels;
const J = jsKernels;

const shapes = fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 20 }), fc.nat(1e6));

describe('qkvAttention reference', () => {
  it('equals attention per head on q, k, v gathered from (B, N, 3, H, D), forward and backward', () => {
    fc.assert(fc.property(shapes, ([b, n, h, d, seed]) => {
      const c = h * d, scale = 0.3 + (seed % 5) * 0.1;
      const qkv = fillRandom(new Float64Array(b * n * 3 * c), seed, -2, 2), dout = fillRandom(new Float64Array(b * n * c), seed + 1);
      const out = new Float64Array(b * n * c), lse = new Float64Array(b * h * n), dqkv = new Float64Array(b * n * 3 * c);
      J.qkvAttentionForward(qkv, out, lse, b, n, h, d, scale);
      J.qkvAttentionBackward(qkv, out, lse, dout, dqkv, b, n, h, d, scale);
      for (let bi = 0; bi < b; bi++) {
        for (let hi = 0; hi < h; hi++) {
          // one head's (N, D) matrices, gathered independently of the code under test
          const part = (src: Float64Array, s: number, parts: number) => {
            const m = new Float64Array(n * d);
            for (let t = 0; t < n; t++) for (let e = 0; e < d; e++) m[t * d + e] = src[((bi * n + t) * parts + s) * c + hi * d + e];
            return m;
          };
          const [q, k, v] = [0, 1, 2].map((s) => part(qkv, s, 3));
          const o = new Float64Array(n * d), l = new Float64Array(n);
          J.attentionForward(q, k, v, o, l, 1, n, d, scale);
          const tag = `head (${bi}, ${hi}) of b${b} n${n} h${h} d${d}`;
          expectClose(`${tag} out`, part(out, 0, 1), o, 1e-13, 1e-12);
          expectClose(`${tag} lse`, lse.subarray((bi * h + hi) * n, (bi * h + hi + 1) * n), l, 1e-13, 1e-12);
          const dq = new Float64Array(n * d), dk = new Float64Array(n * d), dv = new Float64Array(n * d);
          J.attentionBackward(q, k, v, o, l, part(dout, 0, 1), dq, dk, dv, 1, n, d, scale);
          expectClose(`${tag} dq`, part(dqkv, 0, 3), dq, 1e-13, 1e-12);
          expectClose(`${tag} dk`, part(dqkv, 1, 3), dk, 1e-13, 1e-12);
          expectClose(`${tag} dv`, part(dqkv, 2, 3), dv, 1e-13, 1e-12);
        }
      }
    }), { seed: 4, numRuns: 20 });
  });
});

describe.runIf(addon !== null)(`qkvAttention native (addon: ${reason ?? 'loaded'})`, () => {
  afterAll(() => { if (best) addon!.setIsa(best); });

  function check(b: number, n: number, h: number, d: number, seed: number, tag: string): void {
    const c = h * d, scale = 1 / Math.sqrt(d);
    const qkv = fillRandom(new Float32Array(b * n * 3 * c), seed, -2, 2), dout = fillRandom(new Float32Array(b * n * c), seed + 1);
    const out = new Float32Array(b * n * c).fill(NaN), lse = new Float32Array(b * h * n).fill(NaN), dqkv = new Float32Array(b * n * 3 * c).fill(NaN);
    nat.qkvAttentionForward(qkv, out, lse, b, n, h, d, scale);
    nat.qkvAttentionBackward(qkv, out, lse, dout, dqkv, b, n, h, d, scale);
    const rOut = new Float64Array(b * n * c), rLse = new Float64Array(b * h * n), rD = new Float64Array(b * n * 3 * c);
    J.qkvAttentionForward(Float64Array.from(qkv), rOut, rLse, b, n, h, d, scale);
    J.qkvAttentionBackward(Float64Array.from(qkv), rOut, rLse, Float64Array.from(dout), rD, b, n, h, d, scale);
    const t = `${tag} qkvAttention (b ${b}, n ${n}, h ${h}, d ${d})`;
    expectClose(`${t} out`, out, rOut, 5e-6, 1e-5);
    expectClose(`${t} lse`, lse, rLse, 1e-5, 0);
    expectClose(`${t} dqkv`, dqkv, rD, 5e-6, 1e-5);
  }

  for (const isa of paths) {
    it(`isa ${isa}: matches the reference (random shapes; N = 64, 130, 200, 300 = two backward blocks)`, () => {
      expect(addon!.setIsa(isa)).toBe(isa);
      fc.assert(fc.property(shapes, ([b, n, h, d, seed]) => check(b, n, h, d, seed, isa)), { seed: 5, numRuns: 12 });
      check(2, 64, 3, 64, 1, isa);
      check(1, 130, 2, 64, 2, isa);
      check(1, 200, 1, 33, 3, isa);
      check(1, 300, 2, 16, 4, isa);
    });
  }

  // Shapes that steer the kernel into each of its paths (the tile and block sizes are
  // kernels_attention.cc's: 16 x 16 transposes on AVX-512, key blocks of 256, 64-query forward
  // tasks, 4-row register blocks; the labels' "in place" / "padded" name the plain layout's (and up to 128 keys the packed layout's)
  // backward path, which the bit-identity check below runs against the packed one's copies).
  const edgeShapes: [number, number, number, number, string][] = [
    [2, 64, 3, 64, 'SiT-S/2 at 64 tokens: tiles only, in place'],
    [1, 256, 2, 64, '256 tokens: one full key block, four query tasks'],
    [1, 257, 2, 64, 'odd N past one key block: padded backward'],
    [2, 63, 2, 64, 'odd N under one query task'],
    [1, 100, 2, 48, 'key rows past the last tile (100 = 6*16 + 4), in place'],
    [2, 35, 3, 40, 'N off 4 and D = 2.5 tiles: padded copies'],
    [2, 16, 2, 24, 'D a multiple of 8 (AVX2 in place), not of 16'],
    [1, 272, 1, 16, 'two key blocks in place, the second 16 rows'],
    [1, 128, 2, 64, 'qkv rows: dK, dV and V used in place up to 128 keys'],
    [1, 132, 2, 32, 'qkv rows past 128 keys: packed dK, dV and V blocks, Q, dO, K read in place'],
  ];

  for (const isa of paths) {
    it(`isa ${isa}: tile edges, 64 / 256 tokens, odd token counts`, () => {
      expect(addon!.setIsa(isa)).toBe(isa);
      edgeShapes.forEach(([b, n, h, d], i) => check(b, n, h, d, 20 + i, isa));
    });

    it(`isa ${isa}: bit-identical to the same kernel on q, k, v gathered into (B*H, N, D)`, () => {
      expect(addon!.setIsa(isa)).toBe(isa);
      for (const [b, n, h, d, what] of edgeShapes) {
        const c = h * d, len = b * n * c, scale = 1 / Math.sqrt(d);
        const qkv = fillRandom(new Float32Array(3 * len), n + d, -2, 2), dout = fillRandom(new Float32Array(len), n + d + 1);
        const out = new Float32Array(len), lse = new Float32Array(b * h * n), dqkv = new Float32Array(3 * len).fill(NaN);
        nat.qkvAttentionForward(qkv, out, lse, b, n, h, d, scale);
        nat.qkvAttentionBackward(qkv, out, lse, dout, dqkv, b, n, h, d, scale);
        // (B, N, parts, H, D) part s <-> (B, H, N, D), written out here independently of the kernel
        const heads = (src: Float32Array, parts: number, s: number): Float32Array => {
          const m = new Float32Array(len);
          for (let bi = 0; bi < b; bi++) for (let hi = 0; hi < h; hi++) for (let t = 0; t < n; t++) {
            for (let e = 0; e < d; e++) m[((bi * h + hi) * n + t) * d + e] = src[((bi * n + t) * parts + s) * c + hi * d + e];
          }
          return m;
        };
        const [q, k, v] = [0, 1, 2].map((s) => heads(qkv, 3, s));
        const o = new Float32Array(len), l = new Float32Array(b * h * n);
        const dq = new Float32Array(len), dk = new Float32Array(len), dv = new Float32Array(len);
        nat.attentionForward(q, k, v, o, l, b * h, n, d, scale);
        nat.attentionBackward(q, k, v, o, l, heads(dout, 1, 0), dq, dk, dv, b * h, n, d, scale);
        const tag = `${isa} b${b} n${n} h${h} d${d} (${what})`;
        expect(Buffer.from(heads(out, 1, 0).buffer).equals(Buffer.from(o.buffer)), `${tag} out`).toBe(true);
        expect(Buffer.from(lse.buffer).equals(Buffer.from(l.buffer)), `${tag} lse`).toBe(true);
        expect(Buffer.from(heads(dqkv, 3, 0).buffer).equals(Buffer.from(dq.buffer)), `${tag} dq`).toBe(true);
        expect(Buffer.from(heads(dqkv, 3, 1).buffer).equals(Buffer.from(dk.buffer)), `${tag} dk`).toBe(true);
        expect(Buffer.from(heads(dqkv, 3, 2).buffer).equals(Buffer.from(dv.buffer)), `${tag} dv`).toBe(true);
      }
    });
  }

  it('argument errors name the argument', () => {
    const x = new Float32Array(24);
    expect(() => nat.qkvAttentionForward(x, x, new Float32Array(1), 1, 2, 1, 4, 0.5)).toThrow(/qkvAttentionForward: argument 'lse' is too short/);
    expect(() => nat.qkvAttentionBackward(x, x, x, x, new Float32Array(8), 1, 2, 1, 4, 0.5)).toThrow(/argument 'dqkv' is too short/);
  });

  it('bit-identical with a one-thread pool (child process)', () => {
    const script = `
      const a = require(${JSON.stringify(addonPath)});
      const rnd = (n, s) => { const x = new Float32Array(n); let t = s >>> 0;
        for (let i = 0; i < n; i++) { t = (Math.imul(t, 1664525) + 1013904223) >>> 0; x[i] = t / 2 ** 31 - 1; } return x; };
      const h = (x) => { let s = 0; const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
        for (let i = 0; i < u.length; i++) s = (Math.imul(s, 31) + u[i]) >>> 0; return s; };
      const b = 2, n = 150, H = 3, d = 40, c = H * d, qkv = rnd(b * n * 3 * c, 1), go = rnd(b * n * c, 2);
      const o = new Float32Array(b * n * c), lse = new Float32Array(b * H * n), dq = new Float32Array(b * n * 3 * c);
      a.qkvAttentionForward(qkv, o, lse, b, n, H, d, 0.15);
      a.qkvAttentionBackward(qkv, o, lse, go, dq, b, n, H, d, 0.15);
      console.log(JSON.stringify([o, lse, dq].map(h)));`;
    const run = (threads: string) => spawnSync(process.execPath, ['-e', script], { env: { ...process.env, DIFFACTOR_THREADS: threads }, encoding: 'utf8' }).stdout.trim();
    const one = run('1');
    expect(one).toMatch(/^\[/);
    expect(run('2')).toBe(one);
  });
});
