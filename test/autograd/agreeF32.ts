// Test helpers for the autograd op groups: run an op on float64 inputs and on float32 copies of
// them (the float32 path is the one that reaches the native kernels when they are built) and
// check that forward outputs and input gradients agree; plus N-d index helpers for naive loops.
import { Tape, backward, withTape } from '../../src/autograd/index.ts';
import { cast, tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { stridesOf, type Shape } from '../../src/tensor/shape.ts';
import { expectClose } from '../kernels/expectClose.ts';

interface Run { y: Float64Array; grads: (Float64Array | null)[] }

function run(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], dtype: 'float32' | 'float64', skip: Set<number>, seed: number): Run {
  const xs = inputs.map((x, i) => {
    const c = cast(x, dtype);
    if (!skip.has(i)) c.requiresGrad = true;
    return c;
  });
  const tape = new Tape();
  const y = withTape(tape, () => f(...xs));
  const w = tensor(new Rng(seed).normalArray(y.size), y.shape, dtype);
  backward([[y, w]], { tape });
  return { y: Float64Array.from(y.data), grads: xs.map((x, i) => (skip.has(i) ? null : Float64Array.from(x.grad?.data ?? new Float64Array(x.size)))) };
}

/**
 * f on float32 copies agrees with f on float64 within atol + rtol * |ref|, for the output and for
 * the gradient of every input not in `skip` under one random cotangent.
 */
export function expectF32Agrees(
  what: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[],
  opts: { atol?: number; rtol?: number; skip?: number[]; seed?: number } = {},
): void {
  const atol = opts.atol ?? 1e-4, rtol = opts.rtol ?? 1e-4, skip = new Set(opts.skip ?? []);
  const r64 = run(f, inputs, 'float64', skip, opts.seed ?? 3);
  const r32 = run(f, inputs, 'float32', skip, opts.seed ?? 3);
  expectClose(`${what} forward f32 vs f64`, r32.y, r64.y, atol, rtol);
  r64.grads.forEach((g, i) => {
    if (g) expectClose(`${what} grad of input ${i} f32 vs f64`, r32.grads[i]!, g, atol, rtol);
  });
}

/** Multi-index of flat position i in a row-major shape. */
export function unravel(i: number, shape: Shape): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

/** Flat position of a multi-index in a row-major shape. */
export function ravel(idx: readonly number[], shape: Shape): number {
  const st = stridesOf(shape);
  let o = 0;
  for (let d = 0; d < idx.length; d++) o += idx[d] * st[d];
  return o;
}
