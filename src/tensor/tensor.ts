// The Tensor: a float32 (or float64, for gradchecks) contiguous row-major array whose storage is a
// typed-array view of a SharedArrayBuffer, so any actor can read it without a copy (an ArrayBuffer
// in the fallback of src/tensor/sab.ts: then actors get copies). This file holds storage, creation
// and the autograd slots; differentiable ops live in src/autograd/ops.
import { acquireBuffer, track } from './pool.ts';
import { checkShape, fmtShape, sizeOf, type Shape } from './shape.ts';
import type { FArray } from '../kernels/types.ts';
import { MetaF32, meta } from '../kernels/meta.ts';

export type DType = 'float32' | 'float64';

/** A recorded op that produced a tensor (see src/autograd/tape.ts). */
export interface GradNode {
  readonly name: string;
  readonly inputs: readonly (Tensor | null)[];
  backward(gOut: Tensor): (Tensor | null)[];
}

export type GradHook = (grad: Tensor) => Tensor | void;

const EMPTY32 = new Float32Array(0);

export class Tensor {
  data: FArray;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Leaves with requiresGrad receive `.grad`; op outputs get it set by the tape. */
  requiresGrad = false;
  grad: Tensor | null = null;
  node: GradNode | null = null;
  hooks: GradHook[] | null = null;
  retainsGrad = false;
  /** Set when handed to another actor: nobody may write it again. */
  frozen = false;
  /** Survives the enclosing tidy() scope. */
  kept = false;
  disposed = false;
  name?: string;

  constructor(data: FArray, shape: Shape) {
    checkShape(shape);
    if (data.length !== sizeOf(shape)) {
      throw new Error(`Tensor: data length ${data.length} does not match shape ${fmtShape(shape)} (size ${sizeOf(shape)})`);
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = data instanceof Float64Array ? 'float64' : 'float32';
  }

  get size(): number { return this.data.length; }
  get ndim(): number { return this.shape.length; }
  get buffer(): ArrayBufferLike { return this.data.buffer; }
  get isLeaf(): boolean { return this.node === null; }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item(): tensor has ${this.size} elements, shape ${fmtShape(this.shape)}`);
    if (this.data instanceof MetaF32) return 0; // shape-only (kernels/meta.ts): no value, a finite stand-in
    return this.data[0];
  }

  toArray(): number[] { return Array.from(this.data); }

  /** Keep this tensor alive past the enclosing tidy(). */
  keep(): this { this.kept = true; return this; }

  /** Freeze before sending to another actor: writes through the in-place API throw afterwards. */
  freeze(): this { this.frozen = true; return this; }

  assertWritable(what: string): void {
    if (this.frozen) throw new Error(`${what}: tensor${this.name ? ` '${this.name}'` : ''} ${fmtShape(this.shape)} is frozen (it was sent to another actor)`);
    if (this.disposed) throw new Error(`${what}: tensor was released by tidy()`);
  }

  /** Mark a leaf as trainable. */
  requireGrad(on = true): this { this.requiresGrad = on; return this; }

  /** Call fn with this tensor's gradient during backward; fn may return a replacement. */
  registerHook(fn: GradHook): () => void {
    (this.hooks ??= []).push(fn);
    return () => { this.hooks = this.hooks?.filter((h) => h !== fn) ?? null; };
  }

  /** Keep `.grad` on a non-leaf after backward. */
  retainGrad(): this { this.retainsGrad = true; return this; }

  toString(): string {
    const head = Array.from(this.data.subarray(0, 6), (v) => v.toPrecision(4)).join(', ');
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ', grad' : ''}) [${head}${this.size > 6 ? ', …' : ''}]`;
  }
}

/** Release hook used by the pool: makes use-after-release fail loudly instead of reading junk. */
function makeTracked(t: Tensor, owner: boolean): Tensor {
  track({
    buffer: t.data.buffer,
    owner,
    released() { t.disposed = true; t.data = EMPTY32; },
    get kept() { return t.kept; },
    get frozen() { return t.frozen; },
  });
  return t;
}

/** A shape-only tensor (meta execution, kernels/meta.ts): float32 with no storage, never pooled. */
export function metaTensor(shape: Shape): Tensor {
  return makeTracked(new Tensor(new MetaF32(sizeOf(shape)), shape), false);
}

export function empty(shape: Shape, dtype: DType = 'float32'): Tensor {
  checkShape(shape);
  if (meta.on) return metaTensor(shape);
  const n = sizeOf(shape);
  const bytes = n * (dtype === 'float64' ? 8 : 4);
  const buf = acquireBuffer(Math.max(bytes, 8));
  const data = dtype === 'float64' ? new Float64Array(buf, 0, n) : new Float32Array(buf, 0, n);
  return makeTracked(new Tensor(data, shape), true);
}

export const zeros = empty; // pool buffers come back zero-filled

/**
 * Like empty, but a recycled pool buffer is not zero-filled: for outputs that a kernel overwrites
 * entirely before anything reads them (the hot path of a training step allocates hundreds of MB).
 */
export function uninit(shape: Shape, dtype: DType = 'float32'): Tensor {
  checkShape(shape);
  if (meta.on) return metaTensor(shape);
  const n = sizeOf(shape);
  const buf = acquireBuffer(Math.max(n * (dtype === 'float64' ? 8 : 4), 8), false);
  const data = dtype === 'float64' ? new Float64Array(buf, 0, n) : new Float32Array(buf, 0, n);
  return makeTracked(new Tensor(data, shape), true);
}

export function full(shape: Shape, value: number, dtype: DType = 'float32'): Tensor {
  const t = empty(shape, dtype);
  t.data.fill(value);
  return t;
}

export const ones = (shape: Shape, dtype: DType = 'float32'): Tensor => full(shape, 1, dtype);

/** Copy values (nested arrays are not accepted: pass flat data and a shape). */
export function tensor(values: ArrayLike<number>, shape?: Shape, dtype: DType = 'float32'): Tensor {
  const sh = shape ?? [values.length];
  const t = empty(sh, dtype);
  if (values.length !== t.size) throw new Error(`tensor(): ${values.length} values do not fill shape ${fmtShape(sh)}`);
  t.data.set(values as ArrayLike<number>);
  return t;
}

export const scalar = (v: number, dtype: DType = 'float32'): Tensor => tensor([v], [], dtype);

/** A tensor over existing storage (e.g. a received SharedArrayBuffer view, or a received copy); not pooled. */
export function fromData(data: FArray, shape: Shape): Tensor {
  return new Tensor(data, shape);
}

/** Same storage, new shape (sizes must match). The view never frees the storage; it is disposed with it. */
export function viewOf(t: Tensor, shape: Shape): Tensor {
  return makeTracked(new Tensor(t.data, shape), false);
}

export function emptyLike(t: Tensor): Tensor {
  return empty(t.shape, t.dtype);
}

/** Deep copy into fresh storage. */
export function clone(t: Tensor): Tensor {
  const c = emptyLike(t);
  c.data.set(t.data);
  return c;
}

/** Convert dtype (copy). */
export function cast(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return clone(t);
  const c = empty(t.shape, dtype);
  c.data.set(t.data);
  return c;
}
