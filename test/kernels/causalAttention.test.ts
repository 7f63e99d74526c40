// Causal scaled-dot-product attention (the `causal` flag of attentionForward/Backward, for
// DiGIT's GPT): the TypeScript reference against an explicit masked softmax, the causality
// invariant (perturbing anything at positions > i leaves output rows <= i bit-identical), native
// vs TS parity on every SIMD path this CPU has (forward and backward; N > 256 and several 64-row
// query blocks), the autograd op against PyTorch (fixture test/fixtures/attention/causal.safetensors
// from test/fixtures/make_causal_attention_fixture.py) on float64 (TS) and float32 (native when
// loaded), and argument errors. The gradcheck of the op is in test/autograd/attention.test.ts.
// Tolerances: TS float64 vs naive 1e-12; native vs TS as the non-causal parity (parity.test.ts:
// atol 5e-6, rtol 1e-5; lse 1e-5); float32 vs torch float64 atol 2e-5 rtol 1e-4 (inputs ~N(0,1)).
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fileURLToPath } from 'node:url';
import { jsKernels } from '../../src/kernels/js/index.ts';
import { loadAddon, wrapAddon, type NativeAddon } from '../../src/kernels/native.ts';
import { nativeKernels } from '../../src/kernels/index.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { cast, type Tensor } from '../../src/tensor/tensor.ts';
import { scaledDotProductAttention } from '../../src/autograd/ops/attention.ts';
import { backward } from '../../src/autograd/index.ts';
import { mul, sum } from '../../src/autograd/ops/index.ts';
import { expectClose, fillRandom } from './expectClose.ts';

const f32 = (len: number, seed: number, lo = -1, hi = 1): Float32Array => fillRandom(new Float32Array(len), seed, lo, hi);
const f64 = (a: ArrayLike<number>): Float64Array => Float64Array.from(a);

/** softmax(q k^T scale + M) v with M_ij = -inf for j > i, plain float64 loops over one (BH, N, D). */
function naiveCausal(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, bh: number, n: number, d: number, scale: number): Float64Array {
  const out = new Float64Array(bh * n * d);
  for (let h = 0; h < bh; h++) {
    const b = h * n * d;
    for (let i = 0; i < n; i++) {
      const logits = Array.from({ length: n }, (_, j) => {
        if (j > i) return -Infinity;
        let s = 0;
        for (let c = 0; c < d; c++) s += q[b + i * d + c] * k[b + j * d + c];
        return s * scale;
      });
      const m = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - m));
      const z = e.reduce((x, y) => x + y, 0);
      for (let c = 0; c < d; c++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc += (e[j] / z) * v[b + j * d + c];
        out[b + i * d + c] = acc;
      }
    }
  }
  return out;
}

const shapeArb = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 9 }), fc.nat(1e6));

describe('causal attention: TypeScript reference', () => {
  it('equals the explicit masked softmax; row 0 is v_0; the last row equals non-causal attention', () => {
    fc.assert(fc.property(shapeArb, ([bh, n, d, seed]) => {
      const len = bh * n * d, scale = 1 / Math.sqrt(d);
      const q = f64(f32(len, seed, -2, 2)), k = f64(f32(len, seed + 1, -2, 2)), v = f64(f32(len, seed + 2));
      const out = new Float64Array(len), lse = new Float64Array(bh * n);
      jsKernels.attentionForward(q, k, v, out, lse, bh, n, d, scale, true);
      expectClose('causal vs naive', out, naiveCausal(q, k, v, bh, n, d, scale), 1e-12, 1e-10);
      const full = new Float64Array(len), fullLse = new Float64Array(bh * n);
      jsKernels.attentionForward(q, k, v, full, fullLse, bh, n, d, scale, false);
      for (let h = 0; h < bh; h++) {
        const b = h * n * d;
        expectClose('row 0', out.subarray(b, b + d), v.subarray(b, b + d), 1e-15, 0);
        const last = b + (n - 1) * d;
        expectClose('last row', out.subarray(last, last + d), full.subarray(last, last + d), 1e-14, 1e-12);
        expect(Math.abs(lse[h * n + n - 1] - fullLse[h * n + n - 1])).toBeLessThan(1e-12);
      }
    }), { numRuns: 40, seed: 21 });
  });
});

// Kernels to check: the TS reference always, the native addon when it loaded.
const { addon, reason } = loadAddon();
const backends: [string, typeof jsKernels][] = [['js', jsKernels]];
if (addon) backends.push(['native', addon as unknown as typeof jsKernels]);

describe('causal attention: causality (perturbing positions > i leaves rows <= i unchanged)', () => {
  for (const [name, kern] of backends) {
    it(`${name}: out and lse rows <= i are bit-identical; dq rows <= i too, dk/dv rows > i are 0 for dout zero past i`, () => {
      fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 80 }), fc.integer({ min: 1, max: 17 }), fc.nat(1e6), fc.double({ min: 0, max: 1, noNaN: true }),
        (bh, n, d, seed, at) => {
          const i = Math.min(n - 2, Math.floor(at * (n - 1))); // rows 0..i kept, i+1.. perturbed
          const len = bh * n * d, scale = 0.4;
          const q = f32(len, seed, -2, 2), k = f32(len, seed + 1, -2, 2), v = f32(len, seed + 2);
          const [q2, k2, v2] = [q, k, v].map((a, t) => {
            const b = a.slice();
            for (let h = 0; h < bh; h++) for (let j = (i + 1) * d; j < n * d; j++) b[h * n * d + j] = 3 * Math.sin(j + t + seed);
            return b;
          });
          const run = (qq: Float32Array, kk: Float32Array, vv: Float32Array) => {
            const out = new Float32Array(len), lse = new Float32Array(bh * n);
            kern.attentionForward(qq, kk, vv, out, lse, bh, n, d, scale, true);
            const dout = f32(len, seed + 3);
            for (let h = 0; h < bh; h++) dout.fill(0, h * n * d + (i + 1) * d, (h + 1) * n * d); // loss sees rows <= i only
            const dq = new Float32Array(len), dk = new Float32Array(len), dv = new Float32Array(len);
            kern.attentionBackward(qq, kk, vv, out, lse, dout, dq, dk, dv, bh, n, d, scale, true);
            return { out, lse, dq, dk, dv };
          };
          const a = run(q, k, v), b = run(q2, k2, v2);
          for (let h = 0; h < bh; h++) {
            const r0 = h * n * d, r1 = r0 + (i + 1) * d, r2 = (h + 1) * n * d;
            expect(Array.from(b.out.subarray(r0, r1))).toEqual(Array.from(a.out.subarray(r0, r1)));
            expect(Array.from(b.lse.subarray(h * n, h * n + i + 1))).toEqual(Array.from(a.lse.subarray(h * n, h * n + i + 1)));
            for (const g of ['dq', 'dk', 'dv'] as const) {
              // gradients of a loss on rows <= i: identical on rows <= i, zero on rows > i
              expect(Array.from(b[g].subarray(r0, r1)), g).toEqual(Array.from(a[g].subarray(r0, r1)));
              expect(b[g].subarray(r1, r2).every((x) => x === 0), `${g} rows > ${i}`).toBe(true);
            }
          }
        }), { numRuns: 25, seed: 22 });
    });
  }
});

const ISAS = ['avx512', 'avx2', 'scalar'] as const;
type Isa = (typeof ISAS)[number];
const best = addon?.isa() as Isa | undefined;
const paths: Isa[] = addon && best ? ISAS.slice(ISAS.indexOf(best)) : [];
const nat = addon as unknown as typeof jsKernels;

describe.runIf(addon !== null)(`causal attention: native vs TypeScript (addon: ${reason ?? 'loaded'})`, () => {
  afterAll(() => { if (best) addon!.setIsa(best); });

  it('the addon declares the causal flag (older builds ignore it; native.ts then routes causal calls to TS)', () => {
    expect((addon as Record<string, unknown>).attentionCausal).toBe(true);
    expect(nativeKernels).not.toBeNull();
  });

  function causalCase(isa: Isa, bh: number, n: number, d: number, seed: number): void {
    const len = bh * n * d, scale = 1 / Math.sqrt(d) + (seed % 7) * 0.05;
    const q = f32(len, seed, -2, 2), k = f32(len, seed + 1, -2, 2), v = f32(len, seed + 2), dout = f32(len, seed + 3);
    const out = new Float32Array(len).fill(NaN), lse = new Float32Array(bh * n).fill(NaN);
    nat.attentionForward(q, k, v, out, lse, bh, n, d, scale, true);
    const rOut = new Float64Array(len), rLse = new Float64Array(bh * n);
    jsKernels.attentionForward(f64(q), f64(k), f64(v), rOut, rLse, bh, n, d, scale, true);
    const tag = `${isa} causal attention (bh ${bh}, n ${n}, d ${d})`;
    expectClose(`${tag} out`, out, rOut, 5e-6, 1e-5);
    expectClose(`${tag} lse`, lse, rLse, 1e-5, 0);
    const dq = new Float32Array(len).fill(NaN), dk = new Float32Array(len).fill(NaN), dv = new Float32Array(len).fill(NaN);
    nat.attentionBackward(q, k, v, out, lse, dout, dq, dk, dv, bh, n, d, scale, true);
    const rdq = new Float64Array(len), rdk = new Float64Array(len), rdv = new Float64Array(len);
    jsKernels.attentionBackward(f64(q), f64(k), f64(v), rOut, rLse, f64(dout), rdq, rdk, rdv, bh, n, d, scale, true);
    expectClose(`${tag} dq`, dq, rdq, 5e-6, 1e-5);
    expectClose(`${tag} dk`, dk, rdk, 5e-6, 1e-5);
    expectClose(`${tag} dv`, dv, rdv, 5e-6, 1e-5);
  }

  for (const isa of paths) {
    it(`${isa}: random small shapes, then N = 300 / 257 (two key blocks) and N = 130 (three query blocks)`, () => {
      expect(addon!.setIsa(isa)).toBe(isa);
      fc.assert(fc.property(
        fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 37 }), fc.nat(1e6),
        (bh, n, d, seed) => causalCase(isa, bh, n, d, seed),
      ), { seed: 23, numRuns: 12 });
      causalCase(isa, 2, 300, 17, 7);
      causalCase(isa, 1, 257, 64, 8);
      causalCase(isa, 3, 130, 24, 9);
    });
  }

  it('causal false or absent is the unmasked kernel (bit-identical)', () => {
    const bh = 2, n = 70, d = 9, len = bh * n * d;
    const q = f32(len, 1), k = f32(len, 2), v = f32(len, 3);
    const outs = [undefined, false].map((c) => {
      const out = new Float32Array(len), lse = new Float32Array(bh * n);
      if (c === undefined) nat.attentionForward(q, k, v, out, lse, bh, n, d, 0.3);
      else nat.attentionForward(q, k, v, out, lse, bh, n, d, 0.3, c);
      return Array.from(out);
    });
    expect(outs[1]).toEqual(outs[0]);
  });

  it('a non-boolean causal argument is a TypeError naming it', () => {
    const x = new Float32Array(8), y = new Float32Array(8), l = new Float32Array(2);
    expect(() => nat.attentionForward(x, x, x, y, l, 1, 2, 4, 1, 1 as unknown as boolean)).toThrow(/attentionForward: argument 'causal' must be a boolean/);
    expect(() => nat.attentionBackward(x, x, x, x, l, x, y, y, y, 1, 2, 4, 1, 'yes' as unknown as boolean)).toThrow(/attentionBackward: argument 'causal' must be a boolean/);
  });
});

describe('an addon built before the causal flag', () => {
  it('gets causal calls routed to the TypeScript reference, unmasked calls still native', () => {
    const calls: string[] = [];
    const old = {
      isa: () => 'scalar', threads: () => 1, setIsa: (i: string) => i, gemm: () => undefined,
      attentionForward: (...a: unknown[]) => { calls.push(`fwd ${a.length}`); },
      attentionBackward: (...a: unknown[]) => { calls.push(`bwd ${a.length}`); },
    } as unknown as NativeAddon; // no attentionCausal export
    const kern = wrapAddon(old);
    const bh = 1, n = 3, d = 2, len = bh * n * d;
    const q = f32(len, 1), k = f32(len, 2), v = f32(len, 3), out = new Float32Array(len), lse = new Float32Array(n);
    kern.attentionForward(q, k, v, out, lse, bh, n, d, 0.5, true);
    expect(calls).toEqual([]);
    expectClose('routed causal out', out, naiveCausal(q, k, v, bh, n, d, 0.5), 1e-6, 1e-6);
    kern.attentionBackward(q, k, v, out, lse, out, new Float32Array(len), new Float32Array(len), new Float32Array(len), bh, n, d, 0.5, true);
    expect(calls).toEqual([]);
    kern.attentionForward(q, k, v, out, lse, bh, n, d, 0.5);
    kern.attentionBackward(q, k, v, out, lse, out, out, out, out, bh, n, d, 0.5, false);
    expect(calls.map((c) => c.split(' ')[0])).toEqual(['fwd', 'bwd']);
  });
});

const fixture = readSafetensors(fileURLToPath(new URL('../fixtures/attention/causal.safetensors', import.meta.url))).tensors;
const fx = (name: string): Tensor => {
  const t = fixture.get(name);
  if (!t) throw new Error(`fixture has no ${name}`);
  return t;
};

describe('causal scaledDotProductAttention against PyTorch (explicit -inf mask above the diagonal, float64)', () => {
  for (const c of ['small', 'long']) {
    for (const dtype of ['float64', 'float32'] as const) {
      it(`${c}, ${dtype} (${dtype === 'float32' ? (nativeKernels ? 'native' : 'js') : 'js'} kernels): out, dq, dk, dv`, () => {
        const [q, k, v] = ['q', 'k', 'v'].map((n) => cast(fx(`${c}.${n}`), dtype));
        for (const t of [q, k, v]) t.requiresGrad = true;
        const w = cast(fx(`${c}.w`), dtype);
        const out = scaledDotProductAttention(q, k, v, fx(`${c}.scale`).data[0], { causal: true });
        backward(sum(mul(out, w)));
        const [atol, rtol] = dtype === 'float64' ? [2e-6, 1e-6] : [2e-5, 1e-4]; // fixture values are float32-rounded
        expectClose(`${c} out`, out.data, fx(`${c}.out`).data, atol, rtol);
        expectClose(`${c} dq`, q.grad!.data, fx(`${c}.dq`).data, atol, rtol);
        expectClose(`${c} dk`, k.grad!.data, fx(`${c}.dk`).data, atol, rtol);
        expectClose(`${c} dv`, v.grad!.data, fx(`${c}.dv`).data, atol, rtol);
      });
    }
  }

  it('without the flag the fixture is not matched (the mask is what the fixture tests)', () => {
    const [q, k, v] = ['q', 'k', 'v'].map((n) => cast(fx(`small.${n}`), 'float64'));
    const out = scaledDotProductAttention(q, k, v, fx('small.scale').data[0]);
    expect(() => expectClose('unmasked', out.data, fx('small.out').data, 2e-6, 1e-6)).toThrow(/mismatch/);
  });
});

