// Reductions over one axis, several axes or all: sum, mean, max (values). Sums go through
// K.reduceSum with the tensor viewed as (outer, len, inner), one call per run of adjacent axes.
// Not here: norms (layer/group norm), softmax, argmax as an op of its own.
import { empty, zeros, type Tensor } from '../../tensor/tensor.ts';
import { broadcastStrides, normAxis, sizeOf, stridesOf, type Shape } from '../../tensor/shape.ts';
import { K, type FArray } from '../../kernels/index.ts';
import { record } from '../tape.ts';
import { walk } from './broadcast.ts';

/** An axis, a list of axes (negative allowed) or undefined for all. */
export type Axes = number | readonly number[] | undefined;

interface Reduction {
  axes: number[]; // sorted, unique, non-negative
  kept: number[]; // x.shape with the reduced dims set to 1
  outShape: number[]; // kept, or kept without the reduced dims
  count: number; // elements per output
}

function plan(x: Tensor, axis: Axes, keepDim: boolean, what: string): Reduction {
  const nd = x.ndim;
  // torch.sum(x, dim=[]) reduces everything as well; a 0-d tensor has nothing to reduce.
  const list = axis === undefined ? [] : typeof axis === 'number' ? [axis] : [...axis];
  let axes = list.length === 0 ? x.shape.map((_, i) => i) : list.map((a) => normAxis(a, nd));
  if (new Set(axes).size !== axes.length) throw new Error(`${what}: axis ${JSON.stringify(axis)} repeats a dim`);
  if (nd === 0) axes = [];
  axes.sort((p, q) => p - q);
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const outShape = keepDim ? kept : x.shape.filter((_, i) => !axes.includes(i));
  return { axes, kept, outShape, count: sizeOf(axes.map((i) => x.shape[i])) };
}

/** Sum x over r.axes into out (of size sizeOf(r.outShape)): one reduceSum per run of adjacent axes, last run first. */
function sumInto(x: Tensor, r: Reduction, out: FArray): void {
  if (r.axes.length === 0) { out.set(x.data); return; }
  const runs: [number, number][] = [];
  for (const a of r.axes) {
    const last = runs[runs.length - 1];
    if (last && last[1] === a) last[1] = a + 1;
    else runs.push([a, a + 1]);
  }
  const shape = [...x.shape];
  let src = x.data;
  for (let i = runs.length - 1; i >= 0; i--) {
    const [s, e] = runs[i];
    const outer = sizeOf(shape.slice(0, s)), len = sizeOf(shape.slice(s, e)), inner = sizeOf(shape.slice(e));
    const dst = i === 0 ? out : empty([outer * inner], x.dtype).data;
    K.reduceSum(src, dst, outer, len, inner); // (outer, len, inner) -> (outer, inner)
    shape.splice(s, e - s, 1);
    src = dst;
  }
}

/** g (shaped like the reduction with kept dims) broadcast back to `shape`, times scale. */
function expandBack(g: Tensor, kept: Shape, shape: Shape, scale: number): Tensor {
  const out = empty(shape, g.dtype);
  const src = g.data, dst = out.data;
  const st = broadcastStrides(kept, shape);
  walk(shape, st, st, (i, ig) => { dst[i] = scale * src[ig]; });
  return out;
}

/** Sum over `axis` (a dim, a list of dims, or all when omitted), like torch.sum(x, dim, keepdim). */
export function sum(x: Tensor, axis?: Axes, keepDim = false): Tensor {
  const r = plan(x, axis, keepDim, 'sum');
  const out = empty(r.outShape, x.dtype);
  sumInto(x, r, out.data);
  return record('sum', [x], out, (g) => [expandBack(g, r.kept, x.shape, 1)]);
}

/** Mean over `axis` (a dim, a list of dims, or all when omitted), like torch.mean(x, dim, keepdim). */
export function mean(x: Tensor, axis?: Axes, keepDim = false): Tensor {
  const r = plan(x, axis, keepDim, 'mean');
  const out = empty(r.outShape, x.dtype);
  sumInto(x, r, out.data);
  const inv = 1 / r.count; // an empty reduction gives NaN, as in PyTorch
  for (let i = 0; i < out.size; i++) out.data[i] *= inv;
  return record('mean', [x], out, (g) => [expandBack(g, r.kept, x.shape, inv)]);
}

/**
 * Maximum over `axis` (a dim, a list of dims, or all when omitted), values only (torch.amax's
 * shape rules). The gradient goes to the first maximal element in row-major order over the
 * reduced dims (the element argmax picks), not split between ties; NaN counts as maximal.
 */
export function max(x: Tensor, axis?: Axes, keepDim = false): Tensor {
  const r = plan(x, axis, keepDim, 'max');
  if (r.count === 0) throw new Error(`max: reduction over an empty dim of ${JSON.stringify(x.shape)}`);
  const st = stridesOf(x.shape);
  const isRed = (i: number) => r.axes.includes(i);
  // offsets of one reduction group (row-major over the reduced dims), and each group's start
  const redShape = x.shape.map((d, i) => (isRed(i) ? d : 1));
  const redSt = st.map((s, i) => (isRed(i) ? s : 0));
  const offs = new Int32Array(r.count);
  walk(redShape, redSt, redSt, (j, o) => { offs[j] = o; });
  const keptSt = st.map((s, i) => (isRed(i) ? 0 : s));
  const out = empty(r.outShape, x.dtype);
  const arg = new Int32Array(out.size); // flat index into x of each output's maximum
  const xs = x.data, o = out.data;
  walk(r.kept, keptSt, keptSt, (j, base) => {
    let best = base + offs[0], bv = xs[best];
    for (let t = 1; t < offs.length && bv === bv; t++) {
      const v = xs[base + offs[t]];
      if (v > bv || v !== v) { bv = v; best = base + offs[t]; }
    }
    o[j] = bv;
    arg[j] = best;
  });
  return record('max', [x], out, (g) => {
    const dx = zeros(x.shape, x.dtype);
    for (let j = 0; j < arg.length; j++) dx.data[arg[j]] = g.data[j];
    return [dx];
  });
}
