// Loads the native addon (native/build/Release/diffactor.node) and wraps it as a Kernels object.
// It never throws: when the addon is missing or fails to load, it says why in `info.reason`.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Act, type Kernels } from './types.ts';
import { jsKernels } from './js/index.ts';

export interface NativeInfo {
  loaded: boolean;
  /** Instruction set the addon chose at run time (avx512, avx2, scalar), or 'none'. */
  isa: string;
  /** Size of the addon's process-wide thread pool. */
  threads: number;
  /** Why the addon is not used, when it is not. */
  reason?: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const addonPath = path.resolve(here, '../../native/build/Release/diffactor.node');

/** The raw addon module: its own functions plus every Kernels method it implements natively. */
export interface NativeAddon {
  isa(): 'avx512' | 'avx2' | 'scalar';
  threads(): number;
  /** Process-wide (all JS threads): pick a SIMD path the CPU has; for tests and benchmarks. */
  setIsa(isa: 'avx512' | 'avx2' | 'scalar'): string;
  gemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
    a: Float32Array, lda: number, strideA: number, b: Float32Array, ldb: number, strideB: number,
    beta: number, c: Float32Array, ldc: number, strideC: number, batch: number,
    bias: Float32Array | null, act: number, rowSumsA?: Float32Array | null,
  ): void;
  /** The bf16 GEMM (native/src/gemm_bf16.cc): gemm's arguments; A and B rounded to bf16 while
   *  packed, fp32 accumulation. Absent from addons built before it. */
  gemmBf16?: NativeAddon['gemm'];
  /** dst[i] = bf16 bits of src[i] (round to nearest even, denormals to zero, NaN quieted). */
  bf16Round?(src: Float32Array, dst: Uint16Array): void;
  /** qkvAttentionForward/Backward with bf16 products (kernels_qkv_attention_bf16.cc). */
  qkvAttentionForwardBf16?(qkv: Float32Array, out: Float32Array, lse: Float32Array, b: number, n: number, h: number, d: number, scale: number): void;
  qkvAttentionBackwardBf16?(qkv: Float32Array, out: Float32Array, lse: Float32Array, dout: Float32Array, dqkv: Float32Array,
    b: number, n: number, h: number, d: number, scale: number): void;
  /** The bf16 path now: 'avx512bf16' (VDPBF16PS) or the ISA that emulates it. */
  bf16Path?(): 'avx512bf16' | 'avx512' | 'avx2' | 'scalar';
  /** Process-wide: may the bf16 GEMM use VDPBF16PS (tests/benchmarks of the emulation)? */
  setBf16Dot?(on: boolean): string;
  [name: string]: unknown;
}

let cached: { addon: NativeAddon | null; reason?: string } | undefined;

/** Loads the addon once per JS thread; null (with the reason) when it is missing or broken. */
export function loadAddon(): { addon: NativeAddon | null; reason?: string } {
  if (cached) return cached;
  if (!existsSync(addonPath)) {
    cached = { addon: null, reason: `addon not built (${addonPath} missing; run npm run build:native)` };
  } else {
    try {
      cached = { addon: createRequire(import.meta.url)(addonPath) as NativeAddon };
    } catch (e) {
      cached = { addon: null, reason: `addon failed to load: ${(e as Error).message}` };
    }
  }
  return cached;
}

export function loadNative(): { kernels: Kernels | null; info: NativeInfo } {
  const { addon, reason } = loadAddon();
  if (!addon) return { kernels: null, info: { loaded: false, isa: 'none', threads: 0, reason } };
  return { kernels: wrapAddon(addon), info: { loaded: true, isa: addon.isa(), threads: addon.threads() } };
}

type Method = Exclude<keyof Kernels, 'name' | 'gemm'>;
const positional: Method[] = [
  'attentionForward', 'attentionBackward', 'layerNormForward', 'layerNormBackward',
  'softmaxForward', 'softmaxBackward', 'actForward', 'actBackward', 'modulateForward',
  'modulateBackward', 'reduceSum', 'sumSquares', 'adamw', 'ema', 'binary', 'gatedResidualForward',
  'gatedResidualBackward', 'layerNormModulateForward', 'layerNormModulateBackward',
  'qkvAttentionForward', 'qkvAttentionBackward',
];

/**
 * The addon as a Kernels object. gemm's argument object becomes the addon's positional call.
 * Every other method takes the same positional arguments natively as in types.ts (null for an
 * absent optional array), so it is passed straight through; a method the addon does not export
 * (yet) falls back to the TypeScript reference, so a partial addon still gives a working backend.
 * Callers pass Float32Arrays only (index.ts routes float64 to the TS kernels).
 */
export function wrapAddon(addon: NativeAddon): Kernels {
  const g = addon.gemm;
  // precision 'bf16' goes to gemmBf16 (an addon built before it: the TypeScript reference).
  const half = addon.gemmBf16 ?? ((...r: Parameters<NativeAddon['gemm']>) => jsGemmPositional(...r));
  const kernels = {
    name: 'native',
    gemm: (a) =>
      (a.precision === 'bf16' ? half : g)(
        a.transA, a.transB, a.m, a.n, a.k, a.alpha ?? 1,
        a.a as Float32Array, a.lda, a.strideA ?? 0, a.b as Float32Array, a.ldb, a.strideB ?? 0,
        a.beta ?? 0, a.c as Float32Array, a.ldc, a.strideC ?? 0, a.batch ?? 1,
        (a.bias ?? null) as Float32Array | null, a.act ?? Act.none, (a.rowSumsA ?? null) as Float32Array | null,
      ),
  } as Partial<Record<keyof Kernels, unknown>> & Pick<Kernels, 'gemm'>;
  for (const name of positional) {
    const fn = addon[name];
    kernels[name] = typeof fn === 'function' ? fn : jsKernels[name];
  }
  const k = kernels as Kernels;
  {
    // precision 'bf16' goes to the addon's bf16 attention (an addon built before it: the TS reference).
    const fwd = k.qkvAttentionForward, bwd = k.qkvAttentionBackward;
    const fwdBf16 = addon.qkvAttentionForwardBf16, bwdBf16 = addon.qkvAttentionBackwardBf16;
    k.qkvAttentionForward = (qkv, o, lse, b, n, h, d, scale, precision) => {
      if (precision !== 'bf16') return fwd(qkv, o, lse, b, n, h, d, scale);
      if (fwdBf16) return fwdBf16(qkv as Float32Array, o as Float32Array, lse as Float32Array, b, n, h, d, scale);
      return jsKernels.qkvAttentionForward(qkv, o, lse, b, n, h, d, scale, 'bf16');
    };
    k.qkvAttentionBackward = (qkv, o, lse, dout, dqkv, b, n, h, d, scale, precision) => {
      if (precision !== 'bf16') return bwd(qkv, o, lse, dout, dqkv, b, n, h, d, scale);
      if (bwdBf16) return bwdBf16(qkv as Float32Array, o as Float32Array, lse as Float32Array, dout as Float32Array, dqkv as Float32Array, b, n, h, d, scale);
      return jsKernels.qkvAttentionBackward(qkv, o, lse, dout, dqkv, b, n, h, d, scale, 'bf16');
    };
  }
  if (addon.attentionCausal !== true) {
    // An addon built before the causal flag ignores the extra argument: causal calls go to the TS
    // reference until it is rebuilt (npm run build:native).
    const fwd = k.attentionForward, bwd = k.attentionBackward;
    k.attentionForward = (q, kk, v, o, lse, bh, n, d, scale, causal) =>
      (causal ? jsKernels.attentionForward : fwd)(q, kk, v, o, lse, bh, n, d, scale, causal);
    k.attentionBackward = (q, kk, v, o, lse, dout, dq, dk, dv, bh, n, d, scale, causal) =>
      (causal ? jsKernels.attentionBackward : bwd)(q, kk, v, o, lse, dout, dq, dk, dv, bh, n, d, scale, causal);
  }
  return k;
}

/** The TypeScript reference (bf16) from the addon's positional gemm arguments. */
function jsGemmPositional(...r: Parameters<NativeAddon['gemm']>): void {
  const [transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch, bias, act, rowSumsA] = r;
  jsKernels.gemm({ transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch, bias, act: act as 0, precision: 'bf16', rowSumsA });
}

/** Which Kernels methods the loaded addon implements natively (the rest use the TS reference). */
export function nativeMethods(addon: NativeAddon): string[] {
  return ['gemm', ...positional.filter((n) => typeof addon[n] === 'function')];
}
