// Meta execution: shape-only tensors and kernels that count instead of compute (issue 16,
// `diffactor simulate`). While `withMeta(fn)` runs, every tensor the real code allocates
// (tensor/tensor.ts, nn/module.ts) holds a MetaF32 — a Float32Array that reports the tensor's
// length but owns no storage — and every kernel call (kernels/index.ts) goes to `metaKernels`,
// which add the call's FLOPs and bytes to the active counters and write nothing. So the models,
// methods and engine run their real code path, minus the math.
//
// Conventions (stated once, used by every report): a multiply-add is 2 FLOPs (`flops`) and 1 MAC
// (`macs`, the unit of fvcore and of the DiT/SiT/REG papers' "Gflops"); `bytes` are float32 bytes
// each kernel reads plus writes, each operand once (the ideal of a fused kernel with no re-reads).
// Elementwise work done in TypeScript loops outside the kernels (permutes, slices, loss bodies)
// is not counted: on a GPU that is a few percent of the bytes and none of the FLOPs worth naming.
// Not here: the report (cli/simulate.ts), device profiles (bench/devices.ts).
import type { FArray, GemmArgs, Kernels } from './types.ts';

/** A Float32Array with a logical length and no storage: indexed reads give undefined, writes vanish. */
export class MetaF32 extends Float32Array {
  readonly metaLength: number;
  /** The array this one is a subarray of (itself for an allocation): ownership is the root's. */
  readonly root: MetaF32;
  constructor(n: number, root?: MetaF32) {
    super(0);
    this.metaLength = n;
    this.root = root ?? this;
  }
  /** Copies into a shape-only array vanish (parameter initialisers, loaders, EMA copies). */
  override set(): void { /* no storage */ }
  // V8's generic path would walk the logical length (seconds for 675M parameters): nothing to fill.
  override fill(): this { return this; }
  override subarray(begin = 0, end = this.metaLength): MetaF32 {
    const n = this.metaLength;
    const b = begin < 0 ? Math.max(0, n + begin) : Math.min(begin, n);
    const e = end < 0 ? Math.max(0, n + end) : Math.min(end, n);
    return new MetaF32(Math.max(0, e - b), this.root);
  }
}
// `length` is the logical length (a typed array's own is a prototype accessor; TypeScript types it a property).
Object.defineProperty(MetaF32.prototype, 'length', { get(this: MetaF32) { return this.metaLength; } });

export const isMetaArray = (a: unknown): a is MetaF32 => a instanceof MetaF32;

/** Kernel families a report groups by. */
export type KernelKind = 'gemm' | 'attention' | 'norm' | 'elementwise' | 'reduce' | 'optimizer' | 'ema';

/** `elems`: elements a norm kernel normalises (fvcore counts a layer norm as 4 or 5 FLOPs per element). */
export interface MetaCount { flops: number; macs: number; bytes: number; calls: number; seconds: number; elems: number }

/** Where a kernel call's cost goes: phase (forward / backward / update) × actor × kind. */
export interface MetaCounters {
  /** key `${actor}|${phase}|${kind}` → totals. */
  by: Map<string, MetaCount>;
  /** Roofline of one kernel call: its time from FLOPs and bytes (set by the caller; 0 without). */
  time: (kind: KernelKind, flops: number, bytes: number) => number;
  /** The label costs go to right now. */
  actor: string;
  phase: string;
  /** Owner of a parameter's storage: gemm operands and AdamW/EMA targets set `actor` from it. */
  owners: Map<FArray, string>;
  /** Called with the tape when a backward starts (the step's saved activations are on it). */
  onBackward?: (tape: unknown) => void;
}

export const meta = { on: false, counters: null as MetaCounters | null };

export function newCounters(time: MetaCounters['time'] = () => 0): MetaCounters {
  return { by: new Map(), time, actor: 'main', phase: 'forward', owners: new Map() };
}

/** Run fn with shape-only tensors and counting kernels; costs go to `counters`. Not reentrant with real work. */
export function withMeta<T>(counters: MetaCounters, fn: () => T): T {
  const saved = { on: meta.on, counters: meta.counters };
  meta.on = true;
  meta.counters = counters;
  try { return fn(); } finally {
    meta.on = saved.on;
    meta.counters = saved.counters;
  }
}

/** Set the phase label while fn runs (the autograd engine marks its backward with it). */
export function metaPhase<T>(phase: string, fn: () => T): T {
  const c = meta.counters;
  if (!meta.on || !c) return fn();
  const saved = c.phase;
  c.phase = phase;
  try { return fn(); } finally { c.phase = saved; }
}

function add(kind: KernelKind, flops: number, macs: number, elems: number, owner?: FArray | null, normed = 0): void {
  const c = meta.counters;
  if (!c) return;
  const o = owner ? c.owners.get(owner) : undefined; // owner: a root array (see gemmOwner)
  if (o) c.actor = o;
  const key = `${c.actor}|${c.phase}|${kind}`;
  const e = c.by.get(key) ?? { flops: 0, macs: 0, bytes: 0, calls: 0, seconds: 0, elems: 0 };
  const bytes = 4 * elems;
  e.flops += flops; e.macs += macs; e.bytes += bytes; e.calls++; e.elems += normed;
  e.seconds += c.time(kind, flops, bytes);
  c.by.set(key, e);
}

const rootOf = (a: FArray | null | undefined): FArray | null => (a instanceof MetaF32 ? a.root : null);

/**
 * Count work an op does in TypeScript instead of a kernel (im2col, bias loops, group-norm affine),
 * when its loop is skipped on shape-only arrays (those loops would walk every logical element).
 */
export function metaCount(kind: KernelKind, flops: number, elems: number): void {
  add(kind, flops, 0, elems);
}

/** The owner (a parameter's actor) among a gemm's operands: the stored weight, if either is one. */
function gemmOwner(g: GemmArgs): FArray | null {
  const o = meta.counters?.owners;
  const a = rootOf(g.a), b = rootOf(g.b);
  return a && o?.has(a) ? a : b && o?.has(b) ? b : null;
}

/** The counting kernels: FLOPs and bytes per call from the call's sizes (see the header's conventions). */
export const metaKernels: Kernels = {
  name: 'js',
  gemm(g) {
    const batch = g.batch ?? 1, { m, n, k } = g;
    const mac = batch * m * n * k;
    const epi = batch * m * n * ((g.bias ? 1 : 0) + (g.act ? 8 : 0) + (g.beta ? 1 : 0));
    add('gemm', 2 * mac + epi, mac, batch * (m * k + k * n + m * n * (g.beta ? 2 : 1)) + (g.bias ? n : 0), gemmOwner(g));
  },
  // Attention: S = QKᵀ (N²D MACs) and O = PV (N²D MACs) per head, softmax ≈ 5 FLOPs per score.
  attentionForward(_q, _k, _v, _o, _l, bh, n, d) {
    add('attention', bh * (4 * n * n * d + 5 * n * n), 2 * bh * n * n * d, bh * (4 * n * d + n));
  },
  // FlashAttention's backward recomputes S and P, then dV = PᵀdO, dP = dO Vᵀ, dQ = dS K, dK = dSᵀQ.
  attentionBackward(_q, _k, _v, _o, _l, _do, _dq, _dk, _dv, bh, n, d) {
    add('attention', bh * (10 * n * n * d + 8 * n * n), 5 * bh * n * n * d, bh * (8 * n * d + n));
  },
  qkvAttentionForward(_qkv, _o, _l, b, n, h, d) {
    add('attention', b * h * (4 * n * n * d + 5 * n * n), 2 * b * h * n * n * d, b * h * (4 * n * d + n));
  },
  qkvAttentionBackward(_qkv, _o, _l, _do, _dqkv, b, n, h, d) {
    add('attention', b * h * (10 * n * n * d + 8 * n * n), 5 * b * h * n * n * d, b * h * (8 * n * d + n));
  },
  layerNormForward(_x, w, _b, _y, _m, _r, rows, cols) { add('norm', 8 * rows * cols, 0, 2 * rows * cols + 2 * rows + (w ? 2 * cols : 0), null, rows * cols); },
  layerNormBackward(_dy, _x, w, _m, _r, _dx, dw, _db, rows, cols) {
    add('norm', 12 * rows * cols, 0, 3 * rows * cols + 2 * rows + (w ? cols : 0) + (dw ? 2 * cols : 0));
  },
  softmaxForward(_x, _y, rows, cols) { add('elementwise', 5 * rows * cols, 0, 2 * rows * cols); },
  softmaxBackward(_y, _dy, _dx, rows, cols) { add('elementwise', 4 * rows * cols, 0, 3 * rows * cols); },
  actForward(_k, _x, _y, len) { add('elementwise', 8 * len, 0, 2 * len); },
  actBackward(_k, _x, _dy, _dx, len) { add('elementwise', 10 * len, 0, 3 * len); },
  modulateForward(_x, _s, _c, _y, b, n, c) { add('elementwise', 2 * b * n * c, 0, 2 * b * n * c + 2 * b * c); },
  modulateBackward(_dy, _x, _s, _dx, _dsh, _dsc, b, n, c) { add('elementwise', 4 * b * n * c, 0, 3 * b * n * c + 3 * b * c); },
  reduceSum(_x, _o, outer, len, inner) { add('reduce', outer * len * inner, 0, outer * len * inner + outer * inner); },
  sumSquares(_x, len) { add('reduce', 2 * len, 0, len); return 0; },
  adamw(p, _g, _m, _v, len) { add('optimizer', 14 * len, 0, 7 * len, rootOf(p)); },
  ema(t, _s, len) { add('ema', 3 * len, 0, 3 * len, rootOf(t)); },
  binary(_op, _a, _b, _out, shape) {
    const len = shape[0] * shape[1] * shape[2] * shape[3];
    add('elementwise', len, 0, 3 * len);
  },
  gatedResidualForward(_x, _g, _y, _o, b, n, c) { add('elementwise', 2 * b * n * c, 0, 3 * b * n * c + b * c); },
  gatedResidualBackward(_do, _g, _y, _dy, _dg, b, n, c) { add('elementwise', 3 * b * n * c, 0, 3 * b * n * c + 2 * b * c); },
  layerNormModulateForward(_x, _s, _c, _y, _m, _r, b, n, c) { add('norm', 10 * b * n * c, 0, 2 * b * n * c + 2 * b * c + 2 * b * n, null, b * n * c); },
  layerNormModulateBackward(_dy, _x, _s, _m, _r, _dx, _dsh, _dsc, b, n, c) {
    add('norm', 16 * b * n * c, 0, 3 * b * n * c + 3 * b * c + 2 * b * n);
  },
};
