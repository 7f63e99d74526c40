// The GEMM benchmark behind `diffactor bench gemm`: GFLOP/s of the native SGEMM on the DiT
// shapes, 1024^3 and 2048^3, of the TypeScript reference on small shapes, and of numpy/OpenBLAS
// (scripts/numpy_gemm_peer.py) on the same shapes in the same run, interleaved shape by shape so
// that load from other processes hits both alike; with backend 'bf16', the native bf16 GEMM
// (gemmBf16: bf16 inputs, fp32 accumulation) interleaved with them too, and its ratio to our fp32
// GEMM. It measures and prints; it asserts nothing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsKernels, nativeKernels, backendInfo, type Kernels } from '../kernels/index.ts';
import { loadAddon } from '../kernels/native.ts';

export interface GemmShape { m: number; n: number; k: number }
export interface GemmResult extends GemmShape { backend: 'native' | 'bf16' | 'js' | 'numpy'; gflops: number }
export interface GemmBenchReport {
  results: GemmResult[];
  /** Machine state and the peer's BLAS (which OpenBLAS kernel ran), for the record. */
  env: { loadavg: number[]; cpus: number; isa: string; threads: number; peer: unknown; bf16Path?: string };
}

/** m x k times k x n. DiT-S/B/L-like token GEMMs (4096 tokens), then square ones. */
export const NATIVE_SHAPES: GemmShape[] = [
  { m: 4096, k: 192, n: 576 }, { m: 4096, k: 576, n: 192 }, { m: 4096, k: 192, n: 768 },
  { m: 4096, k: 768, n: 192 }, { m: 4096, k: 384, n: 1152 }, { m: 4096, k: 1536, n: 384 },
  { m: 1024, k: 1024, n: 1024 }, { m: 2048, k: 2048, n: 2048 },
];
/** The TypeScript reference is ~100x slower: a square shape and one DiT shape cut to 1/8 rows. */
export const JS_SHAPES: GemmShape[] = [{ m: 256, k: 256, n: 256 }, { m: 512, k: 192, n: 576 }];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const peerScript = path.join(root, 'scripts/numpy_gemm_peer.py');

function rand(len: number, seed: number): Float32Array {
  const a = new Float32Array(len);
  let s = seed >>> 0;
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

/** Best-of-`reps` GFLOP/s, each rep averaging calls over at least `minMs`. */
function timeGemm(kern: Pick<Kernels, 'gemm'>, { m, n, k }: GemmShape, minMs: number, reps: number): number {
  const a = rand(m * k, 1), b = rand(k * n, 2), c = new Float32Array(m * n);
  const run = () => kern.gemm({ transA: false, transB: false, m, n, k, a, lda: k, b, ldb: n, c, ldc: n });
  run(); // warm-up: pool threads, pages, packing buffers
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    let calls = 0;
    const t0 = performance.now();
    let dt: number;
    do { run(); calls++; dt = performance.now() - t0; } while (dt < minMs);
    best = Math.min(best, dt / calls);
  }
  return (2 * m * n * k) / (best * 1e6);
}

/** A python3 that has numpy: /usr/bin/python3 (Debian's numpy + OpenBLAS) first, then PATH's. */
function findPython(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    if (py.startsWith('/') && !existsSync(py)) continue;
    if (spawnSync(py, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0) return py;
  }
  return null;
}

/**
 * numpy's GFLOP/s for one shape. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for this command
 * only, so OpenBLAS picks its best kernel for this CPU (the machine pins an older one for safety).
 */
function timeNumpy(py: string, { m, n, k }: GemmShape, minMs: number, reps: number): { gflops: number; info: unknown } | null {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync(py, [peerScript, '--shapes', `${m}x${n}x${k}`, '--min-time', String(minMs / 1000), '--reps', String(reps)], { env, encoding: 'utf8' });
  if (r.status !== 0) return null;
  const out = JSON.parse(r.stdout) as { results: { gflops: number }[]; numpy: string; blas: unknown };
  return { gflops: out.results[0].gflops, info: { python: py, numpy: out.numpy, blas: out.blas } };
}

/** The addon's bf16 GEMM as a Kernels-like gemm (same argument object), or null without it. */
function bf16Kernels(): Pick<Kernels, 'gemm'> | null {
  const { addon } = loadAddon();
  const g = addon?.gemmBf16;
  if (!addon || !g) return null;
  return {
    gemm: (a) => g(a.transA, a.transB, a.m, a.n, a.k, a.alpha ?? 1, a.a as Float32Array, a.lda, 0,
      a.b as Float32Array, a.ldb, 0, a.beta ?? 0, a.c as Float32Array, a.ldc, 0, 1, null, 0),
  };
}

export async function benchGemm(opts: {
  backends: ('native' | 'bf16' | 'js')[]; shapes?: GemmShape[]; json: boolean;
  /** Fewer, shorter repetitions (smoke runs). */
  quick?: boolean;
  /** Leave out the numpy peer. */
  noPeer?: boolean;
}): Promise<GemmBenchReport> {
  // Many short interleaved rounds: on a shared machine each backend's best round is the one that
  // met a quiet moment, and short rounds give both backends several chances at one.
  const minMs = opts.quick ? 60 : 150, reps = opts.quick ? 1 : 2, rounds = opts.quick ? 1 : 4;
  const results: GemmResult[] = [];
  const py = opts.noPeer ? null : findPython();
  let peer: unknown = opts.noPeer ? 'not requested' : 'no python3 with numpy found';
  const log = (s: string) => { if (!opts.json) process.stderr.write(s); };

  const bf16 = opts.backends.includes('bf16') ? bf16Kernels() : null;
  if (opts.backends.includes('bf16') && !bf16) throw new Error('bf16 backend requested but the addon has no gemmBf16 (npm run build:native)');
  if (opts.backends.includes('native')) {
    if (!nativeKernels) throw new Error(`native backend requested but not loaded: ${backendInfo.reason}`);
    for (const shape of opts.shapes ?? NATIVE_SHAPES) {
      log(`gemm ${shape.m}x${shape.k}x${shape.n} ...`);
      // Alternate native, bf16 and numpy `rounds` times and keep each one's best.
      let nat = 0, half = 0, np = 0;
      for (let r = 0; r < rounds; r++) {
        nat = Math.max(nat, timeGemm(nativeKernels, shape, minMs, reps));
        if (bf16) half = Math.max(half, timeGemm(bf16, shape, minMs, reps));
        if (py) {
          const p = timeNumpy(py, shape, minMs, reps);
          if (p) { np = Math.max(np, p.gflops); peer = p.info; }
        }
      }
      results.push({ ...shape, backend: 'native', gflops: nat });
      if (bf16) results.push({ ...shape, backend: 'bf16', gflops: half });
      if (np > 0) results.push({ ...shape, backend: 'numpy', gflops: np });
      log(` native ${nat.toFixed(1)}${bf16 ? `, bf16 ${half.toFixed(1)}` : ''}${np > 0 ? `, numpy ${np.toFixed(1)}` : ''} GFLOP/s\n`);
    }
  }
  if (opts.backends.includes('js')) {
    for (const shape of opts.shapes ?? JS_SHAPES) {
      results.push({ ...shape, backend: 'js', gflops: timeGemm(jsKernels, shape, minMs, 1) });
    }
  }
  const report: GemmBenchReport = {
    results,
    env: {
      loadavg: os.loadavg(), cpus: os.cpus().length, isa: backendInfo.isa, threads: backendInfo.threads, peer,
      ...(bf16 ? { bf16Path: loadAddon().addon!.bf16Path!() } : {}),
    },
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else printGemmTable(results);
  return report;
}

/** Markdown table: one row per shape (m x k x n), GFLOP/s per backend, native/numpy, bf16/native. */
export function printGemmTable(results: GemmResult[], write: (s: string) => void = (s) => process.stdout.write(s)): void {
  const key = (r: GemmShape) => `${r.m}x${r.k}x${r.n}`;
  const rows = new Map<string, Partial<Record<GemmResult['backend'], number>>>();
  for (const r of results) rows.set(key(r), { ...rows.get(key(r)), [r.backend]: r.gflops });
  const f = (v?: number) => (v === undefined ? '' : v.toFixed(1));
  write('| shape m x k x n | native GFLOP/s | numpy GFLOP/s | native / numpy | js GFLOP/s | bf16 GFLOP/s | bf16 / native |\n');
  write('| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n');
  for (const [shape, v] of rows) {
    const ratio = v.native !== undefined && v.numpy ? `${((100 * v.native) / v.numpy).toFixed(0)}%` : '';
    const half = v.bf16 !== undefined && v.native ? `${(v.bf16 / v.native).toFixed(2)}x` : '';
    write(`| ${shape.replaceAll('x', ' x ')} | ${f(v.native)} | ${f(v.numpy)} | ${ratio} | ${f(v.js)} | ${f(v.bf16)} | ${half} |\n`);
  }
}
