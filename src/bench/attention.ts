// The attention benchmark behind `diffactor bench attention`: forward and backward time of the
// fused attention kernels (native and TypeScript reference) and of PyTorch's CPU attention
// (scripts/torch_attention_peer.py, run by /usr/bin/python3 when it has torch) on the two DiT-like
// shapes of the issue, native and torch interleaved shape by shape so load from other processes
// hits both alike. It measures and prints; it asserts nothing.
//
// GFLOP/s counts matmul flops only and the same for every backend: forward 4·B·H·N²·D (QKᵀ, PV),
// backward 8·B·H·N²·D (dV, dP, dQ, dK; the native backward's recomputation of QKᵀ is not counted),
// over fwd_ms + bwd_ms.
//
// The GEMM yardstick: in the same rotation as the native kernel, the native SGEMM on the shape's
// qkv projection (batch·tokens × heads·headDim → 3·heads·headDim, the GEMM that feeds this
// attention in a SiT block); native rows carry its GFLOP/s and attention / GEMM.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsKernels, nativeKernels, backendInfo, type Kernels } from '../kernels/index.ts';

export interface AttentionShape { batch: number; heads: number; tokens: number; headDim: number }
export interface AttentionResult extends AttentionShape {
  backend: 'native' | 'js' | 'torch';
  fwd_ms: number;
  bwd_ms: number;
  gflops: number;
  /** Native rows: the SGEMM's GFLOP/s on the qkv projection GEMM, timed in the same rotation. */
  gemm?: { m: number; k: number; n: number; gflops: number };
  /** Native rows: gflops / gemm.gflops. */
  gemm_ratio?: number;
}
export interface AttentionBenchReport {
  results: AttentionResult[];
  env: { loadavg: number[]; cpus: number; isa: string; threads: number; peer: unknown };
}

/** The shapes: DiT-S/2-like on 32x32 latents (64 tokens), and a 256-token one. */
export const ATTENTION_SHAPES: AttentionShape[] = [
  { batch: 64, heads: 3, tokens: 64, headDim: 64 },
  { batch: 16, heads: 6, tokens: 256, headDim: 64 },
];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const peerScript = path.join(root, 'scripts/torch_attention_peer.py');
const TORCH_PYTHON = '/usr/bin/python3';

function rand(len: number, seed: number): Float32Array {
  const a = new Float32Array(len);
  let s = seed >>> 0;
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2147483648 - 1;
  }
  return a;
}

const flops = (s: AttentionShape): { fwd: number; bwd: number } => {
  const base = s.batch * s.heads * s.tokens * s.tokens * s.headDim;
  return { fwd: 4 * base, bwd: 8 * base };
};

function result(s: AttentionShape, backend: AttentionResult['backend'], fwd: number, bwd: number): AttentionResult {
  const f = flops(s);
  return { ...s, backend, fwd_ms: fwd, bwd_ms: bwd, gflops: (f.fwd + f.bwd) / ((fwd + bwd) * 1e6) };
}

/** Best-of-`reps` milliseconds per call, each rep averaging calls over at least `minMs`. */
function bestMs(run: () => void, minMs: number, reps: number): number {
  run(); // warm-up: pool threads, pages, scratch buffers
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    let calls = 0;
    const t0 = performance.now();
    let dt: number;
    do { run(); calls++; dt = performance.now() - t0; } while (dt < minMs);
    best = Math.min(best, dt / calls);
  }
  return best;
}

/** The qkv projection GEMM of a shape: (batch·tokens, heads·headDim) @ (heads·headDim, 3·heads·headDim). */
export function qkvGemmShape(s: AttentionShape): { m: number; k: number; n: number } {
  const c = s.heads * s.headDim;
  return { m: s.batch * s.tokens, k: c, n: 3 * c };
}

/** The native SGEMM's GFLOP/s on `shape` (best of `reps`, each ≥ minMs). */
function timeGemm(kern: Kernels, { m, k, n }: { m: number; k: number; n: number }, minMs: number, reps: number): number {
  const a = rand(m * k, 5), b = rand(k * n, 6), c = new Float32Array(m * n);
  const ms = bestMs(() => kern.gemm({ transA: false, transB: false, m, n, k, a, lda: k, b, ldb: n, c, ldc: n }), minMs, reps);
  return (2 * m * n * k) / (ms * 1e6);
}

function timeKernels(kern: Kernels, s: AttentionShape, minMs: number, reps: number): { fwd: number; bwd: number } {
  const bh = s.batch * s.heads, n = s.tokens, d = s.headDim, len = bh * n * d, scale = 1 / Math.sqrt(d);
  const q = rand(len, 1), k = rand(len, 2), v = rand(len, 3), dout = rand(len, 4);
  const out = new Float32Array(len), lse = new Float32Array(bh * n);
  const dq = new Float32Array(len), dk = new Float32Array(len), dv = new Float32Array(len);
  const fwd = bestMs(() => kern.attentionForward(q, k, v, out, lse, bh, n, d, scale), minMs, reps);
  const bwd = bestMs(() => kern.attentionBackward(q, k, v, out, lse, dout, dq, dk, dv, bh, n, d, scale), minMs, reps);
  return { fwd, bwd };
}

/** PyTorch's times for one shape, or the reason there are none. */
function timeTorch(s: AttentionShape, minMs: number, reps: number, threads: number): { fwd: number; bwd: number; info: unknown } | string {
  if (!existsSync(TORCH_PYTHON)) return `${TORCH_PYTHON} missing`;
  if (spawnSync(TORCH_PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) return 'no torch for /usr/bin/python3 (apt install python3-torch)';
  // OPENBLAS_CORETYPE pins OpenBLAS's kernel choice for this CPU, as the brief for this peer asks.
  const env = { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX' };
  const shape = `${s.batch}x${s.heads}x${s.tokens}x${s.headDim}`;
  const r = spawnSync(TORCH_PYTHON, [peerScript, '--shapes', shape, '--threads', String(threads), '--min-time', String(minMs / 1000), '--reps', String(reps)], { env, encoding: 'utf8' });
  if (r.status !== 0) return `torch peer failed: ${r.stderr.trim().split('\n').pop()}`;
  const out = JSON.parse(r.stdout) as { results: { fwd_ms: number; bwd_ms: number }[]; torch: string; threads: number; impl: string };
  return { fwd: out.results[0].fwd_ms, bwd: out.results[0].bwd_ms, info: { python: TORCH_PYTHON, torch: out.torch, threads: out.threads, impl: out.impl } };
}

export async function benchAttention(opts: {
  backends?: ('native' | 'js')[];
  shapes?: AttentionShape[];
  json?: boolean;
  /** Fewer, shorter repetitions (smoke runs); the TypeScript reference then runs batch 1 only. */
  quick?: boolean;
  /** Leave out the PyTorch peer. */
  noPeer?: boolean;
} = {}): Promise<AttentionBenchReport> {
  const backends = opts.backends ?? ['native', 'js'];
  const shapes = opts.shapes ?? ATTENTION_SHAPES;
  const minMs = opts.quick ? 60 : 300, reps = opts.quick ? 1 : 3, rounds = opts.quick ? 1 : 2;
  const threads = Math.max(1, backendInfo.threads || os.cpus().length);
  const results: AttentionResult[] = [];
  let peer: unknown = opts.noPeer ? 'not requested' : 'not run';
  const log = (s: string) => { if (!opts.json) process.stderr.write(s); };

  for (const s of shapes) {
    log(`attention B=${s.batch} H=${s.heads} N=${s.tokens} D=${s.headDim} ...`);
    if (backends.includes('native')) {
      if (!nativeKernels) throw new Error(`native backend requested but not loaded: ${backendInfo.reason}`);
      // Alternate native and torch `rounds` times and keep each one's best.
      let nat = { fwd: Infinity, bwd: Infinity }, tor = { fwd: Infinity, bwd: Infinity }, gemm = 0;
      const gs = qkvGemmShape(s);
      for (let r = 0; r < rounds; r++) {
        const t = timeKernels(nativeKernels, s, minMs, reps);
        nat = { fwd: Math.min(nat.fwd, t.fwd), bwd: Math.min(nat.bwd, t.bwd) };
        gemm = Math.max(gemm, timeGemm(nativeKernels, gs, minMs, reps));
        if (!opts.noPeer) {
          const p = timeTorch(s, minMs, reps, threads);
          if (typeof p === 'string') peer = p;
          else { tor = { fwd: Math.min(tor.fwd, p.fwd), bwd: Math.min(tor.bwd, p.bwd) }; peer = p.info; }
        }
      }
      const nr = result(s, 'native', nat.fwd, nat.bwd);
      results.push({ ...nr, gemm: { ...gs, gflops: gemm }, gemm_ratio: nr.gflops / gemm });
      if (Number.isFinite(tor.fwd)) results.push(result(s, 'torch', tor.fwd, tor.bwd));
      log(` native ${nat.fwd.toFixed(2)} / ${nat.bwd.toFixed(2)} ms (${(nr.gflops / gemm).toFixed(2)}× the GEMM's ${gemm.toFixed(0)} GFLOP/s)`);
      if (Number.isFinite(tor.fwd)) log(`, torch ${tor.fwd.toFixed(2)} / ${tor.bwd.toFixed(2)} ms`);
    }
    if (backends.includes('js')) {
      // The reference is ~50x slower: one timed call each; in quick mode on batch 1 only.
      const js = opts.quick ? { ...s, batch: 1 } : s;
      const t = timeKernels(jsKernels, js, 0, 1);
      results.push(result(js, 'js', t.fwd, t.bwd));
      log(`, js ${t.fwd.toFixed(1)} / ${t.bwd.toFixed(1)} ms${opts.quick ? ' (batch 1)' : ''}`);
    }
    log('\n');
  }
  const report: AttentionBenchReport = {
    results,
    env: { loadavg: os.loadavg(), cpus: os.cpus().length, isa: backendInfo.isa, threads: backendInfo.threads, peer },
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else printAttentionTable(results);
  return report;
}

/** Markdown table: one row per shape and backend. */
export function printAttentionTable(results: AttentionResult[], write: (s: string) => void = (s) => process.stdout.write(s)): void {
  write('| batch | heads | tokens | head dim | backend | fwd ms | bwd ms | GFLOP/s | GEMM GFLOP/s (qkv shape) | / GEMM |\n');
  write('| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n');
  for (const r of results) {
    const g = r.gemm ? `${r.gemm.gflops.toFixed(1)} (${r.gemm.m}×${r.gemm.k}×${r.gemm.n})` : '';
    const ratio = r.gemm_ratio !== undefined ? r.gemm_ratio.toFixed(2) : '';
    write(`| ${r.batch} | ${r.heads} | ${r.tokens} | ${r.headDim} | ${r.backend} | ${r.fwd_ms.toFixed(2)} | ${r.bwd_ms.toFixed(2)} | ${r.gflops.toFixed(1)} | ${g} | ${ratio} |\n`);
  }
}
