// Elementwise functions of one tensor: exp, log, sqrt, rsqrt, pow, abs, clamp, sigmoid, tanh, and
// the activations relu, silu, gelu (these three through K.actForward/K.actBackward, the native
// kernels in float32). Not here: binary arithmetic (arith.ts), softmax (softmax.ts).
import { uninit, type Tensor } from '../../tensor/tensor.ts';
import { Act, K, type ActCode } from '../../kernels/index.ts';
import { record } from '../tape.ts';
import { mapBinary, resultDtype, sumToShape } from './broadcast.ts';

/**
 * y = f(x) elementwise, recorded with dx = g * d(x, y): d gets the input and output element so
 * that exp, sqrt, sigmoid, tanh reuse their output.
 */
function unary(name: string, x: Tensor, f: (v: number) => number, d: (v: number, y: number) => number): Tensor {
  const out = uninit(x.shape, x.dtype);
  const xs = x.data, ys = out.data;
  for (let i = 0; i < xs.length; i++) ys[i] = f(xs[i]);
  return record(name, [x], out, (g) => {
    const dx = uninit(x.shape, x.dtype);
    const gs = g.data, ds = dx.data;
    for (let i = 0; i < gs.length; i++) ds[i] = gs[i] * d(xs[i], ys[i]);
    return [dx];
  });
}

export const exp = (x: Tensor): Tensor => unary('exp', x, Math.exp, (_, y) => y);
/** Natural log (NaN below 0, -Infinity at 0). */
export const log = (x: Tensor): Tensor => unary('log', x, Math.log, (v) => 1 / v);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x, Math.sqrt, (_, y) => 0.5 / y);
/** 1 / sqrt(x). */
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x, (v) => 1 / Math.sqrt(v), (_, y) => -0.5 * y * y * y);
/** |x|; gradient sign(x), 0 at 0 (as torch). */
export const abs = (x: Tensor): Tensor => unary('abs', x, Math.abs, (v) => (v > 0 ? 1 : v < 0 ? -1 : 0));
export const tanh = (x: Tensor): Tensor => unary('tanh', x, Math.tanh, (_, y) => 1 - y * y);

/** Logistic sigmoid 1 / (1 + e^-x), written so that neither tail overflows. */
export const sigmoid = (x: Tensor): Tensor =>
  unary('sigmoid', x, (v) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v))), (_, y) => y * (1 - y));

/**
 * x ** p. A number p: gradient p * x^(p-1) (0 everywhere when p = 0, like torch). A tensor p
 * broadcasts with x; its gradient is x^p * ln(x), taken as 0 where x = 0 and p >= 0 (torch's rule).
 */
export function pow(x: Tensor, p: number | Tensor): Tensor {
  if (typeof p === 'number') {
    return unary('pow', x, (v) => v ** p, p === 0 ? () => 0 : (v) => p * v ** (p - 1));
  }
  resultDtype(x, p);
  const out = mapBinary(x, p, (a, b) => a ** b);
  return record('pow', [x, p], out, (g) => [
    x.requiresGrad ? sumToShape(mapBinary(g, mapBinary(x, p, (a, b) => (b === 0 ? 0 : b * a ** (b - 1))), (u, v) => u * v), x.shape) : null,
    p.requiresGrad ? sumToShape(mapBinary(g, mapBinary(x, p, (a, b) => (a === 0 && b >= 0 ? 0 : a ** b * Math.log(a))), (u, v) => u * v), p.shape) : null,
  ]);
}

/**
 * Clamp into [min, max] (either bound may be omitted; if min > max every element becomes max, like
 * torch). The gradient passes where min <= x <= max (bounds included, as torch) and is 0 outside.
 */
export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  if (min == null && max == null) throw new Error('clamp: give at least one of min and max');
  const lo = min ?? -Infinity, hi = max ?? Infinity;
  return unary('clamp', x, (v) => Math.min(Math.max(v, lo), hi), (v) => (v >= lo && v <= hi ? 1 : 0));
}

/** Activation through the fused kernels: y = act(x); dx = dy * act'(x) recomputed from x. */
function activation(name: string, kind: ActCode, x: Tensor): Tensor {
  const out = uninit(x.shape, x.dtype);
  K.actForward(kind, x.data, out.data, x.size);
  return record(name, [x], out, (g) => {
    const dx = uninit(x.shape, x.dtype);
    K.actBackward(kind, x.data, g.data, dx.data, x.size);
    return [dx];
  });
}

/** max(x, 0); gradient 1 for x > 0, 0 otherwise (0 at 0, like torch). */
export const relu = (x: Tensor): Tensor => activation('relu', Act.relu, x);
/** x * sigmoid(x). */
export const silu = (x: Tensor): Tensor => activation('silu', Act.silu, x);
/** GELU: x * Phi(x) with the exact erf ('none', torch's default) or the tanh approximation. */
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor =>
  activation(approximate === 'tanh' ? 'gelu_tanh' : 'gelu', approximate === 'tanh' ? Act.geluTanh : Act.gelu, x);
