// Kernel dispatch: one `K` object that every layer above calls. A call goes to the native addon
// when it loaded, the backend is not forced to js, and every array is float32; otherwise to the
// TypeScript reference (which also serves float64, the gradcheck path).
// DIFFACTOR_BACKEND=js|native forces a backend (native fails loudly if the addon is missing).
import type { FArray, Kernels } from './types.ts';
import { jsKernels } from './js/index.ts';
import { loadNative, type NativeInfo } from './native.ts';
import { meta, metaKernels } from './meta.ts';

export * from './types.ts';
export { jsKernels };

const forced = process.env.DIFFACTOR_BACKEND;
if (forced !== undefined && forced !== 'js' && forced !== 'native') {
  throw new Error(`DIFFACTOR_BACKEND must be 'js' or 'native', got '${forced}'`);
}
const loaded = forced === 'js' ? { kernels: null, info: { loaded: false, isa: 'none', threads: 0, reason: 'DIFFACTOR_BACKEND=js' } as NativeInfo } : loadNative();
if (forced === 'native' && !loaded.kernels) {
  throw new Error(`DIFFACTOR_BACKEND=native but the native addon did not load: ${loaded.info.reason}`);
}

/** The native kernels, or null when the addon is not in use. */
export const nativeKernels: Kernels | null = loaded.kernels;
export const backendInfo: NativeInfo & { backend: 'js' | 'native' } = {
  ...loaded.info,
  backend: loaded.kernels ? 'native' : 'js',
};

const isF32 = (x: FArray | null | undefined): boolean => x == null || x instanceof Float32Array;

function pick(...arrays: (FArray | null | undefined)[]): Kernels {
  if (meta.on) return metaKernels; // shape-only execution (kernels/meta.ts): count, compute nothing
  if (!nativeKernels) return jsKernels;
  for (const a of arrays) if (!isF32(a)) return jsKernels;
  return nativeKernels;
}

/** The dispatched kernels. */
export const K: Kernels = {
  name: nativeKernels ? 'native' : 'js',
  gemm: (g) => pick(g.a, g.b, g.c, g.bias, g.rowSumsA).gemm(g),
  attentionForward: (q, k, v, o, lse, ...r) => pick(q, k, v, o, lse).attentionForward(q, k, v, o, lse, ...r),
  attentionBackward: (q, k, v, o, lse, dout, dq, dk, dv, ...r) =>
    pick(q, k, v, o, lse, dout, dq, dk, dv).attentionBackward(q, k, v, o, lse, dout, dq, dk, dv, ...r),
  layerNormForward: (x, w, b, y, mean, rstd, ...r) => pick(x, w, b, y, mean, rstd).layerNormForward(x, w, b, y, mean, rstd, ...r),
  layerNormBackward: (dy, x, w, mean, rstd, dx, dw, db, ...r) =>
    pick(dy, x, w, mean, rstd, dx, dw, db).layerNormBackward(dy, x, w, mean, rstd, dx, dw, db, ...r),
  softmaxForward: (x, y, ...r) => pick(x, y).softmaxForward(x, y, ...r),
  softmaxBackward: (y, dy, dx, ...r) => pick(y, dy, dx).softmaxBackward(y, dy, dx, ...r),
  actForward: (kind, x, y, len) => pick(x, y).actForward(kind, x, y, len),
  actBackward: (kind, x, dy, dx, len) => pick(x, dy, dx).actBackward(kind, x, dy, dx, len),
  modulateForward: (x, sh, sc, y, ...r) => pick(x, sh, sc, y).modulateForward(x, sh, sc, y, ...r),
  modulateBackward: (dy, x, sc, dx, dsh, dsc, ...r) => pick(dy, x, sc, dx, dsh, dsc).modulateBackward(dy, x, sc, dx, dsh, dsc, ...r),
  reduceSum: (x, out, ...r) => pick(x, out).reduceSum(x, out, ...r),
  sumSquares: (x, len) => pick(x).sumSquares(x, len),
  adamw: (p, g, m, v, ...r) => pick(p, g, m, v).adamw(p, g, m, v, ...r),
  ema: (t, s, ...r) => pick(t, s).ema(t, s, ...r),
  binary: (op, a, b, out, ...r) => pick(a, b, out).binary(op, a, b, out, ...r),
  gatedResidualForward: (x, g, y, out, ...r) => pick(x, g, y, out).gatedResidualForward(x, g, y, out, ...r),
  gatedResidualBackward: (dout, g, y, dy, dg, ...r) => pick(dout, g, y, dy, dg).gatedResidualBackward(dout, g, y, dy, dg, ...r),
  layerNormModulateForward: (x, sh, sc, y, mean, rstd, ...r) =>
    pick(x, sh, sc, y, mean, rstd).layerNormModulateForward(x, sh, sc, y, mean, rstd, ...r),
  layerNormModulateBackward: (dy, x, sc, mean, rstd, dx, dsh, dsc, ...r) =>
    pick(dy, x, sc, mean, rstd, dx, dsh, dsc).layerNormModulateBackward(dy, x, sc, mean, rstd, dx, dsh, dsc, ...r),
  qkvAttentionForward: (qkv, out, lse, ...r) => pick(qkv, out, lse).qkvAttentionForward(qkv, out, lse, ...r),
  qkvAttentionBackward: (qkv, out, lse, dout, dqkv, ...r) =>
    pick(qkv, out, lse, dout, dqkv).qkvAttentionBackward(qkv, out, lse, dout, dqkv, ...r),
};
