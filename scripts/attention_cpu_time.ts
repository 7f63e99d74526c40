// Attention vs GEMM by CPU time on one thread: the native attention kernel (kernels_attention.cc)
// forward + backward on the plain (B*H, N, D) layout and on the packed qkv layout the SiT blocks
// use, and the native SGEMM on the shape's qkv projection GEMM, interleaved 15 times, the best of
// each. With DIFFACTOR_BASE_ADDON=<path of another diffactor.node> (e.g. a build of an earlier
// commit), that addon's qkv-layout attention joins the same rotation as a "before" column. CPU time
// of this thread (process.cpuUsage, with DIFFACTOR_THREADS=1 the pool runs inline) does not count
// the time other jobs hold the core, so the ratio holds on a loaded machine better than wall time
// (caches and the other hyperthread are still shared). When the addon has it, the bf16 qkv-layout
// attention (kernels_qkv_attention_bf16.cc, train.precision bf16) joins the rotation as a last
// column (its flops counted alike; against the fp32 GEMM). Measures and prints; asserts nothing.
//   DIFFACTOR_THREADS=1 npx tsx scripts/attention_cpu_time.ts
//   DIFFACTOR_THREADS=1 DIFFACTOR_BASE_ADDON=/tmp/base.node npx tsx scripts/attention_cpu_time.ts
import os from 'node:os';
import { createRequire } from 'node:module';
import { nativeKernels } from '../src/kernels/index.ts';
import { loadAddon } from '../src/kernels/native.ts';
import { ATTENTION_SHAPES, qkvGemmShape } from '../src/bench/attention.ts';

if (!nativeKernels) throw new Error('the native addon is not loaded');
const K = nativeKernels;
const basePath = process.env.DIFFACTOR_BASE_ADDON;
const base = basePath ? (createRequire(import.meta.url)(basePath) as typeof K) : null;
const bf16 = typeof loadAddon().addon?.qkvAttentionForwardBf16 === 'function';
// The base addon's bf16 kernel (raw addon functions), when it has one: a "before" bf16 column.
type Bf16Fns = { qkvAttentionForwardBf16: (...a: unknown[]) => void; qkvAttentionBackwardBf16: (...a: unknown[]) => void };
const baseBf16 = bf16 && base && typeof (base as unknown as Partial<Bf16Fns>).qkvAttentionForwardBf16 === 'function' ? (base as unknown as Bf16Fns) : null;
function rand(len: number, seed: number): Float32Array {
  const a = new Float32Array(len);
  let s = seed >>> 0;
  for (let i = 0; i < len; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; a[i] = s / 2147483648 - 1; }
  return a;
}
/** CPU milliseconds per call, calls repeated over ≥ 40 ms of wall time. */
function cpuMs(run: () => void): number {
  let calls = 0;
  const t0 = performance.now(), u0 = process.cpuUsage().user;
  do { run(); calls++; } while (performance.now() - t0 < 40);
  return (process.cpuUsage().user - u0) / 1000 / calls;
}
console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, threads ${process.env.DIFFACTOR_THREADS ?? 'all (CPU time then sums threads)'}`);
if (base) console.log(`before: qkv-layout attention of ${basePath}`);
console.log(`| batch×heads×tokens×dim | attention fwd / bwd CPU ms | GFLOP/s | qkv attention fwd / bwd | GFLOP/s | GEMM (qkv shape) GFLOP/s | attention / GEMM | qkv / GEMM |${base ? ' before: qkv fwd / bwd | before: qkv / GEMM |' : ''}${bf16 ? ' bf16 qkv fwd / bwd | bf16 qkv / GEMM |' : ''}${baseBf16 ? ' before: bf16 fwd / bwd | before: bf16 / GEMM |' : ''}`);
console.log(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |${base ? ' ---: | ---: |' : ''}${bf16 ? ' ---: | ---: |' : ''}${baseBf16 ? ' ---: | ---: |' : ''}`);
for (const s of ATTENTION_SHAPES) {
  const { batch: B, heads: H, tokens: N, headDim: D } = s;
  const bh = B * H, len = bh * N * D, scale = 1 / Math.sqrt(D);
  const q = rand(len, 1), k = rand(len, 2), v = rand(len, 3), dout = rand(len, 4);
  const out = new Float32Array(len), lse = new Float32Array(bh * N), dq = new Float32Array(len), dk = new Float32Array(len), dv = new Float32Array(len);
  const qkv = rand(3 * len, 5), o2 = new Float32Array(len), l2 = new Float32Array(bh * N), dqkv = new Float32Array(3 * len);
  const g = qkvGemmShape(s), A = rand(g.m * g.k, 6), Bm = rand(g.k * g.n, 7), C = new Float32Array(g.m * g.n);
  const runs: Record<string, () => void> = {
    fwd: () => K.attentionForward(q, k, v, out, lse, bh, N, D, scale),
    bwd: () => K.attentionBackward(q, k, v, out, lse, dout, dq, dk, dv, bh, N, D, scale),
    qfwd: () => K.qkvAttentionForward(qkv, o2, l2, B, N, H, D, scale),
    qbwd: () => K.qkvAttentionBackward(qkv, o2, l2, dout, dqkv, B, N, H, D, scale),
    ...(base ? {
      bfwd: () => base.qkvAttentionForward(qkv, o2, l2, B, N, H, D, scale),
      bbwd: () => base.qkvAttentionBackward(qkv, o2, l2, dout, dqkv, B, N, H, D, scale),
    } : {}),
    ...(bf16 ? {
      hfwd: () => K.qkvAttentionForward(qkv, o2, l2, B, N, H, D, scale, 'bf16'),
      hbwd: () => K.qkvAttentionBackward(qkv, o2, l2, dout, dqkv, B, N, H, D, scale, 'bf16'),
    } : {}),
    ...(baseBf16 ? {
      xfwd: () => baseBf16.qkvAttentionForwardBf16(qkv, o2, l2, B, N, H, D, scale),
      xbwd: () => baseBf16.qkvAttentionBackwardBf16(qkv, o2, l2, dout, dqkv, B, N, H, D, scale),
    } : {}),
    gemm: () => K.gemm({ transA: false, transB: false, m: g.m, n: g.n, k: g.k, a: A, lda: g.k, b: Bm, ldb: g.n, c: C, ldc: g.n }),
  };
  for (const r of Object.values(runs)) r();
  const best: Record<string, number> = {};
  for (let rep = 0; rep < 15; rep++) for (const [name, r] of Object.entries(runs)) best[name] = Math.min(best[name] ?? Infinity, cpuMs(r));
  const flops = 12 * bh * N * N * D, gf = (2 * g.m * g.n * g.k) / (best.gemm * 1e6);
  const a = flops / ((best.fwd + best.bwd) * 1e6), qa = flops / ((best.qfwd + best.qbwd) * 1e6);
  const before = base ? ` ${best.bfwd.toFixed(2)} / ${best.bbwd.toFixed(2)} | ${(flops / ((best.bfwd + best.bbwd) * 1e6) / gf).toFixed(2)} |` : '';
  const half = bf16 ? ` ${best.hfwd.toFixed(2)} / ${best.hbwd.toFixed(2)} | ${(flops / ((best.hfwd + best.hbwd) * 1e6) / gf).toFixed(2)} |` : '';
  const halfBefore = baseBf16 ? ` ${best.xfwd.toFixed(2)} / ${best.xbwd.toFixed(2)} | ${(flops / ((best.xfwd + best.xbwd) * 1e6) / gf).toFixed(2)} |` : '';
  console.log(`| ${B}×${H}×${N}×${D} | ${best.fwd.toFixed(2)} / ${best.bwd.toFixed(2)} | ${a.toFixed(1)} | ${best.qfwd.toFixed(2)} / ${best.qbwd.toFixed(2)} | ${qa.toFixed(1)} | ${gf.toFixed(1)} | ${(a / gf).toFixed(2)} | ${(qa / gf).toFixed(2)} |${before}${half}${halfBefore}`);
}
console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
