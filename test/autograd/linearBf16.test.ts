// linear in bf16 mixed precision (setLinearPrecision('bf16'), train.precision): its forward and
// backward against the same op in fp32 and in float64. A gradcheck does not apply (bf16 rounding
// is not differentiable), so each product is checked within a stated bound instead:
//   |bf16 - exact| <= (2^-7 + 2^-15 + 1.2 (k + 2) 2^-23) S,   S = sum_p |u_p| |v_p| (+ |bias|)
// (each operand rounded to bf16 moves by at most 2^-8 of itself, so a product by at most
// 2^-7 + 2^-16 of itself; then the fp32 sum's own k + 2 roundings, x1.2 as in the gemm tests).
// Also: the forward is bit-for-bit the bf16 GEMM reference (so the bf16 route is really taken),
// the bias gradient and the stored weights are untouched by the precision, dW is a full fp32
// gradient (not bf16 values), float64 tensors ignore the setting, and the setting is per call
// site read once (the backward uses the forward's precision).
import { afterEach, describe, expect, it } from 'vitest';
import { backward, linear, setLinearPrecision, getLinearPrecision } from '../../src/autograd/index.ts';
import { gemmBf16 } from '../../src/kernels/js/bf16.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';

afterEach(() => { setLinearPrecision('fp32'); });

interface Run { y: Float32Array; dx: Float32Array; dw: Float32Array; db: Float32Array }

function run(x: Tensor, w: Tensor, b: Tensor, dy: Tensor, precision: 'fp32' | 'bf16'): Run {
  const prev = setLinearPrecision(precision);
  try {
    const xs = tensor(x.data, x.shape).requireGrad(), ws = tensor(w.data, w.shape).requireGrad(), bs = tensor(b.data, b.shape).requireGrad();
    const y = linear(xs, ws, bs);
    backward([[y, dy]]);
    return { y: y.data as Float32Array, dx: xs.grad!.data as Float32Array, dw: ws.grad!.data as Float32Array, db: bs.grad!.data as Float32Array };
  } finally {
    setLinearPrecision(prev);
  }
}

/** C (m, n) = sum_p U(i, p) V(p, j) in float64, and S = sum_p |U||V|, with U, V given by accessors. */
function exact(m: number, n: number, k: number, u: (i: number, p: number) => number, v: (p: number, j: number) => number, add?: Float32Array) {
  const c = new Float64Array(m * n), s = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = add ? add[j] : 0, mag = add ? Math.abs(add[j]) : 0;
      for (let p = 0; p < k; p++) { const t = u(i, p) * v(p, j); acc += t; mag += Math.abs(t); }
      c[i * n + j] = acc; s[i * n + j] = mag;
    }
  }
  return { c, s };
}

function within(what: string, got: Float32Array, ref: { c: Float64Array; s: Float64Array }, k: number): number {
  const rel = 2 ** -7 + 2 ** -15 + 1.2 * (k + 2) * 2 ** -23;
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - ref.c[i]);
    if (!(d <= rel * ref.s[i] + 1e-30)) throw new Error(`${what}[${i}] = ${got[i]}, exact ${ref.c[i]}, diff ${d} > ${rel * ref.s[i]}`);
    worst = Math.max(worst, d / ref.s[i]);
  }
  return worst;
}

const SHAPES: [number, number, number][] = [[256, 192, 576], [37, 53, 29], [64, 1, 7], [5, 600, 3]];

describe('linear in bf16 mixed precision', () => {
  for (const [rows, inF, outF] of SHAPES) {
    it(`forward and backward within the bf16 bound of exact, rows ${rows}, in ${inF}, out ${outF}`, () => {
      const rng = new Rng(rows * 7 + inF);
      const x = rng.normal([rows, inF]), w = rng.normal([outF, inF], 0, 0.05), b = rng.normal([outF], 0, 0.1), dy = rng.normal([rows, outF]);
      const w0 = Float32Array.from(w.data);
      const f32 = run(x, w, b, dy, 'fp32'), h = run(x, w, b, dy, 'bf16');
      expect(Array.from(w.data)).toEqual(Array.from(w0)); // master weights stay fp32, unrounded

      const X = x.data, W = w.data, G = dy.data;
      const yRef = exact(rows, outF, inF, (i, p) => X[i * inF + p], (p, j) => W[j * inF + p], b.data as Float32Array);
      const dxRef = exact(rows, inF, outF, (i, p) => G[i * outF + p], (p, j) => W[p * inF + j]);
      const dwRef = exact(outF, inF, rows, (i, p) => G[p * outF + i], (p, j) => X[p * inF + j]);
      const worst = [within('y', h.y, yRef, inF), within('dx', h.dx, dxRef, outF), within('dW', h.dw, dwRef, rows)];
      // bf16 is a real change: above fp32's error somewhere (for k > 1), yet inside the bound.
      if (inF > 1) expect(Math.max(...worst)).toBeGreaterThan(2 ** -12);
      expect(h.y.some((v, i) => v !== f32.y[i])).toBe(true);
      // db = sum of dy over rows: no product, no rounding of inputs.
      expect(Array.from(h.db)).toEqual(Array.from(f32.db));
      // dW is a full fp32 gradient, not bf16 values.
      const u = new Uint32Array(h.dw.buffer, h.dw.byteOffset, h.dw.length);
      expect(u.some((bits) => (bits & 0xffff) !== 0)).toBe(true);

      // The forward is bit-for-bit the bf16 GEMM reference (y = bf16(x) bf16(W)^T + b, fp32 sums).
      const want = new Float32Array(rows * outF);
      gemmBf16({ transA: false, transB: true, m: rows, n: outF, k: inF, a: X, lda: inF, b: W, ldb: inF, c: want, ldc: outF, bias: b.data });
      for (let i = 0; i < want.length; i++) if (!Object.is(h.y[i], want[i])) throw new Error(`y[${i}] ${h.y[i]} != reference ${want[i]}`);
    });
  }

  it('float64 tensors (the gradcheck path) ignore bf16', () => {
    const rng = new Rng(3);
    const x = rng.normal([6, 9], 0, 1, 'float64'), w = rng.normal([4, 9], 0, 1, 'float64');
    const y64 = linear(x, w).toArray();
    setLinearPrecision('bf16');
    expect(linear(x, w).toArray()).toEqual(y64);
  });

  it('the backward uses the precision of its forward; the setter returns the previous value and checks it', () => {
    const rng = new Rng(4);
    const x = rng.normal([40, 70]), w = rng.normal([30, 70]), b = rng.normal([30]), dy = rng.normal([40, 30]);
    const ref = run(x, w, b, dy, 'bf16');
    setLinearPrecision('bf16');
    const xs = tensor(x.data, x.shape).requireGrad(), ws = tensor(w.data, w.shape).requireGrad(), bs = tensor(b.data, b.shape).requireGrad();
    const y = linear(xs, ws, bs);
    expect(setLinearPrecision('fp32')).toBe('bf16');
    backward([[y, dy]]);
    expect(Array.from(xs.grad!.data)).toEqual(Array.from(ref.dx));
    expect(Array.from(ws.grad!.data)).toEqual(Array.from(ref.dw));
    expect(getLinearPrecision()).toBe('fp32');
    expect(() => setLinearPrecision('fp16' as 'bf16')).toThrow(/setLinearPrecision: expected 'fp32' or 'bf16', got 'fp16'/);
  });
});
