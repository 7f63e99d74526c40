// bf16 attention on the packed qkv layout (train.precision bf16): the TypeScript reference with
// precision 'bf16' (every product's operands rounded to bf16, float64 sums) against an explicit
// bf16-operand composite, then the native kernel (kernels_qkv_attention_bf16.cc: products on the
// bf16 GEMM) against that reference on every SIMD path, VDPBF16PS against its emulation bit for
// bit, the bf16 op against the fp32 op within a stated bound, and the autograd op taking the bf16
// path under withLinearPrecision('bf16').
// Bounds: native vs the bf16 reference: lse 2e-5 abs + 1e-4 rel (fp32 vs float64 sums of the same
// bf16 products); out and dqkv 2e-3 abs + 1e-2 rel: an fp32 P (or dS) that rounds to the
// neighbouring bf16 of the float64 one changes one term by ≤ 2^-7 · p · |v|, ≤ 1.6e-3 with
// N ≥ 37 keys (p ≲ 0.1 here) and |v| ≤ 2; measured ≤ 1.2e-4. bf16 vs fp32:
// |bf16 - fp32| ≤ 2^-6 · max|fp32| (bf16 keeps 8 significant bits, relative rounding ≤ 2^-9 per
// operand; measured ≤ 0.006 · max). VDPBF16PS vs emulation: bit for bit.
import { afterAll, describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { jsKernels } from '../../src/kernels/js/index.ts';
import { roundBf16 } from '../../src/kernels/js/bf16.ts';
import { addonPath, loadAddon, wrapAddon } from '../../src/kernels/native.ts';
import { nativeKernels } from '../../src/kernels/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { qkvAttention } from '../../src/autograd/ops/attention.ts';
import { withLinearPrecision } from '../../src/autograd/ops/matmul.ts';
import { expectClose, fillRandom } from './expectClose.ts';

const { addon, reason } = loadAddon();
const ISAS = ['avx512', 'avx2', 'scalar'] as const;
type Isa = (typeof ISAS)[number];
const best = addon?.isa() as Isa | undefined;
const paths: Isa[] = addon && best ? ISAS.slice(ISAS.indexOf(best)) : [];
const hasBf16 = typeof addon?.qkvAttentionForwardBf16 === 'function';
const J = jsKernels;

describe('qkvAttention bf16 reference', () => {
  it('equals softmax(bf16(q) bf16(k)^T s) with bf16(P) bf16(v), per head, written out here', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 6 }), fc.nat(1e6),
      (b, n, h, d, seed) => {
        const c = h * d, scale = 0.4;
        const qkv = fillRandom(new Float64Array(b * n * 3 * c), seed, -2, 2);
        const out = new Float64Array(b * n * c), lse = new Float64Array(b * h * n);
        J.qkvAttentionForward(qkv, out, lse, b, n, h, d, scale, 'bf16');
        const at = (bi: number, t: number, s: number, hi: number, e: number) => roundBf16(qkv[((bi * n + t) * 3 + s) * c + hi * d + e]);
        for (let bi = 0; bi < b; bi++) for (let hi = 0; hi < h; hi++) for (let i = 0; i < n; i++) {
          const logit = Array.from({ length: n }, (_, j) => { let s = 0; for (let e = 0; e < d; e++) s += at(bi, i, 0, hi, e) * at(bi, j, 1, hi, e); return s * scale; });
          const m = Math.max(...logit), ex = logit.map((x) => Math.exp(x - m)), z = ex.reduce((x, y) => x + y, 0);
          expect(Math.abs(lse[(bi * h + hi) * n + i] - (m + Math.log(z)))).toBeLessThan(1e-12);
          for (let e = 0; e < d; e++) {
            let o = 0;
            for (let j = 0; j < n; j++) o += roundBf16(ex[j] / z) * at(bi, j, 2, hi, e);
            expect(Math.abs(out[(bi * n + i) * c + hi * d + e] - o)).toBeLessThan(1e-12);
          }
        }
      }), { seed: 7, numRuns: 15 });
  });

  it('differs from the fp32 reference (the rounding is applied)', () => {
    const qkv = fillRandom(new Float64Array(3 * 8 * 4), 3, -2, 2), o1 = new Float64Array(32), o2 = new Float64Array(32), l = new Float64Array(8);
    J.qkvAttentionForward(qkv, o1, l, 1, 8, 1, 4, 0.5);
    J.qkvAttentionForward(qkv, o2, l, 1, 8, 1, 4, 0.5, 'bf16');
    expect(o1.some((x, i) => x !== o2[i])).toBe(true);
  });
});

describe.runIf(hasBf16)(`qkvAttention bf16 native (addon: ${reason ?? 'loaded'})`, () => {
  afterAll(() => { if (best) addon!.setIsa(best); addon!.setBf16Dot?.(true); });

  function run(b: number, n: number, h: number, d: number, seed: number, precision: 'fp32' | 'bf16') {
    const c = h * d, len = b * n * c, scale = 1 / Math.sqrt(d);
    const qkv = fillRandom(new Float32Array(3 * len), seed, -2, 2), dout = fillRandom(new Float32Array(len), seed + 1);
    const out = new Float32Array(len).fill(NaN), lse = new Float32Array(b * h * n).fill(NaN), dqkv = new Float32Array(3 * len).fill(NaN);
    const K = wrapAddon(addon!);
    K.qkvAttentionForward(qkv, out, lse, b, n, h, d, scale, precision);
    K.qkvAttentionBackward(qkv, out, lse, dout, dqkv, b, n, h, d, scale, precision);
    return { qkv, dout, out, lse, dqkv, scale };
  }
  const shapes: [number, number, number, number][] = [[2, 64, 3, 64], [1, 256, 2, 64], [2, 37, 3, 20], [1, 300, 2, 16]];

  for (const isa of paths) {
    it(`isa ${isa} (bf16 path ${isa === 'avx512' ? 'VDPBF16PS when CPUID has it' : 'emulation'}): matches the bf16 reference`, () => {
      expect(addon!.setIsa(isa)).toBe(isa);
      shapes.forEach(([b, n, h, d], i) => {
        const r = run(b, n, h, d, 30 + i, 'bf16'), c = h * d;
        const ro = new Float64Array(b * n * c), rl = new Float64Array(b * h * n), rd = new Float64Array(3 * b * n * c);
        J.qkvAttentionForward(Float64Array.from(r.qkv), ro, rl, b, n, h, d, r.scale, 'bf16');
        J.qkvAttentionBackward(Float64Array.from(r.qkv), ro, rl, Float64Array.from(r.dout), rd, b, n, h, d, r.scale, 'bf16');
        const t = `${isa} ${addon!.bf16Path?.()} bf16 (b ${b}, n ${n}, h ${h}, d ${d})`;
        expectClose(`${t} out`, r.out, ro, 2e-3, 1e-2);
        expectClose(`${t} lse`, r.lse, rl, 2e-5, 1e-4);
        expectClose(`${t} dqkv`, r.dqkv, rd, 2e-3, 1e-2);
      });
    });
  }

  it.runIf(best === 'avx512')('VDPBF16PS and its emulation give bit-identical out, lse, dqkv (avx512)', () => {
    addon!.setIsa('avx512');
    for (const [b, n, h, d] of [...shapes, [1, 5, 1, 3] as [number, number, number, number]]) {
      addon!.setBf16Dot!(true);
      const dot = run(b, n, h, d, 40, 'bf16'), dotPath = addon!.bf16Path!();
      addon!.setBf16Dot!(false);
      const emu = run(b, n, h, d, 40, 'bf16');
      expect(addon!.bf16Path!()).toBe('avx512');
      addon!.setBf16Dot!(true);
      for (const k of ['out', 'lse', 'dqkv'] as const) {
        expect(Buffer.from(dot[k].buffer).equals(Buffer.from(emu[k].buffer)), `${dotPath} vs emulation ${k} (b ${b}, n ${n}, h ${h}, d ${d})`).toBe(true);
      }
    }
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
      a.qkvAttentionForwardBf16(qkv, o, lse, b, n, H, d, 0.15);
      a.qkvAttentionBackwardBf16(qkv, o, lse, go, dq, b, n, H, d, 0.15);
      console.log(JSON.stringify([o, lse, dq].map(h)));`;
    const run = (threads: string) => spawnSync(process.execPath, ['-e', script], { env: { ...process.env, DIFFACTOR_THREADS: threads }, encoding: 'utf8' }).stdout.trim();
    const one = run('1');
    expect(one).toMatch(/^\[/);
    expect(run('2')).toBe(one);
  });

  it('bf16 against the fp32 op: |bf16 - fp32| <= 2^-6 max|fp32| for out and dqkv, and not equal', () => {
    if (best) addon!.setIsa(best);
    for (const [b, n, h, d] of shapes) {
      const x = run(b, n, h, d, 50, 'bf16'), y = run(b, n, h, d, 50, 'fp32');
      for (const k of ['out', 'dqkv'] as const) {
        let m = 0, diff = 0;
        for (let i = 0; i < y[k].length; i++) { m = Math.max(m, Math.abs(y[k][i])); diff = Math.max(diff, Math.abs(x[k][i] - y[k][i])); }
        expect(diff, `${k} (b ${b}, n ${n}, h ${h}, d ${d}): max diff ${diff}, max ${m}`).toBeLessThanOrEqual(2 ** -6 * m);
        expect(diff, `${k}: bf16 rounding must show`).toBeGreaterThan(0);
      }
    }
  });
});

describe('qkvAttention op under train.precision bf16', () => {
  it('float32 runs the bf16 kernels (forward and backward); float64 stays exact', () => {
    const rng = new Rng(11);
    const x = rng.normal([2, 9, 3 * 2 * 8], 0, 1, 'float32');
    x.requiresGrad = true;
    const y = withLinearPrecision('bf16', () => qkvAttention(x, 2));
    const K = nativeKernels ?? jsKernels;
    const out = new Float32Array(2 * 9 * 16), lse = new Float32Array(2 * 2 * 9);
    K.qkvAttentionForward(x.data, out, lse, 2, 9, 2, 8, 1 / Math.sqrt(8), 'bf16');
    expect(Buffer.from((y.data as Float32Array).buffer).equals(Buffer.from(out.buffer))).toBe(true);
    const fp = qkvAttention(x, 2);
    expect(Array.from(fp.data).some((v, i) => v !== y.data[i])).toBe(true);
    const x64 = rng.normal([1, 5, 3 * 4], 0, 1, 'float64');
    const a = withLinearPrecision('bf16', () => qkvAttention(x64, 1)), b2 = qkvAttention(x64, 1);
    expect(Array.from(a.data)).toEqual(Array.from(b2.data));
  });
});
