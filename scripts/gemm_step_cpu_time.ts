// The training step's GEMMs by CPU time on one thread: every Linear of a SiT block at P1's and P2's
// shapes (tokens x width), as the step calls them — forward y = x W^T + b (transB, bias epilogue),
// dX = dY W (NN), dW = dY^T X (transA, k = tokens) — fp32 (gemm) and bf16 (gemmBf16), plus the
// forward without its bias to show the epilogue's cost. All variants of a shape alternate, 12
// rounds, the best of each (CPU time of this thread, process.cpuUsage: with DIFFACTOR_THREADS=1
// the pool runs inline, and time other jobs hold the core is not counted). Measures and prints;
// asserts nothing. --base <diffactor.node>: another build of the addon (e.g. of the commit before a
// change) timed in the same rounds, with columns new / base.
//   DIFFACTOR_THREADS=1 npx tsx scripts/gemm_step_cpu_time.ts [P1|P2|all] [--base path]
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { loadAddon, type NativeAddon } from '../src/kernels/native.ts';

const { addon, reason } = loadAddon();
if (!addon || !addon.gemmBf16) throw new Error(`needs the native addon with gemmBf16: ${reason ?? 'gemmBf16 missing'}`);
const argv = process.argv.slice(2);
const baseAt = argv.indexOf('--base');
const basePath = baseAt >= 0 ? argv[baseAt + 1] : undefined;
if (baseAt >= 0 && !basePath) throw new Error('--base: expected the path of a diffactor.node');
const which = argv.find((x, i) => !x.startsWith('--') && (baseAt < 0 || i !== baseAt + 1)) ?? 'all';
const base = basePath ? (createRequire(import.meta.url)(path.resolve(basePath)) as NativeAddon) : null;
if (base && !base.gemmBf16) throw new Error(`--base ${basePath}: that addon has no gemmBf16`);
if (process.env.DIFFACTOR_THREADS !== '1') console.log('warning: DIFFACTOR_THREADS is not 1; CPU time then sums the pool threads');

function rand(len: number, seed: number): Float32Array {
  const a = new Float32Array(len);
  let s = seed >>> 0;
  for (let i = 0; i < len; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; a[i] = s / 2147483648 - 1; }
  return a;
}
const cpu = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
/** CPU milliseconds per call, calls repeated over >= 30 ms of CPU time. */
function cpuMs(run: () => void): number {
  let calls = 0;
  const t0 = cpu();
  let dt: number;
  do { run(); calls++; dt = cpu() - t0; } while (dt < 30);
  return dt / calls;
}

// (tokens, in, out) of each Linear in a block: qkv, attention out, MLP in, MLP out.
const CONFIGS: Record<string, [number, number, number][]> = {
  P1: [[4096, 192, 576], [4096, 192, 192], [4096, 192, 768], [4096, 768, 192]],
  P2: [[4096, 384, 1152], [4096, 384, 384], [4096, 384, 1536], [4096, 1536, 384]],
};
type Gemm = NativeAddon['gemm'];
console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, threads ${process.env.DIFFACTOR_THREADS ?? 'pool'}`);
console.log(base
  ? '| config | tokens x in -> out | product | fp32 GFLOP/s | fp32 base | new / base | bf16 GFLOP/s | bf16 base | new / base | bf16 / fp32 |'
  : '| config | tokens x in -> out | product | fp32 GFLOP/s | bf16 GFLOP/s | bf16 / fp32 |');
console.log(base ? '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |' : '| --- | --- | --- | ---: | ---: | ---: |');
for (const [name, shapes] of Object.entries(CONFIGS)) {
  if (which !== 'all' && which !== name) continue;
  for (const [rows, inF, outF] of shapes) {
    const x = rand(rows * inF, 1), w = rand(outF * inF, 2), bias = rand(outF, 3), dy = rand(rows * outF, 4);
    const y = new Float32Array(rows * outF), dx = new Float32Array(rows * inF), dw = new Float32Array(outF * inF);
    const products: Record<string, (g: Gemm) => void> = {
      'fwd x W^T + b': (g) => g(false, true, rows, outF, inF, 1, x, inF, 0, w, inF, 0, 0, y, outF, 0, 1, bias, 0),
      'fwd x W^T (no bias)': (g) => g(false, true, rows, outF, inF, 1, x, inF, 0, w, inF, 0, 0, y, outF, 0, 1, null, 0),
      'dX = dY W': (g) => g(false, false, rows, inF, outF, 1, dy, outF, 0, w, inF, 0, 0, dx, inF, 0, 1, null, 0),
      'dW = dY^T X': (g) => g(true, false, outF, inF, rows, 1, dy, outF, 0, x, inF, 0, 0, dw, inF, 0, 1, null, 0),
    };
    const gemms: Record<string, Gemm> = { fp32: addon.gemm, bf16: addon.gemmBf16 };
    if (base) Object.assign(gemms, { 'fp32 base': base.gemm, 'bf16 base': base.gemmBf16! });
    const best: Record<string, number> = {};
    for (const [p, run] of Object.entries(products)) for (const [q, g] of Object.entries(gemms)) run(g); // warm-up
    for (let rep = 0; rep < 12; rep++) {
      for (const [p, run] of Object.entries(products)) {
        for (const [q, g] of Object.entries(gemms)) best[`${p}|${q}`] = Math.min(best[`${p}|${q}`] ?? Infinity, cpuMs(() => run(g)));
      }
    }
    const flops = 2 * rows * inF * outF;
    for (const p of Object.keys(products)) {
      const gf = (q: string) => flops / (best[`${p}|${q}`] * 1e6);
      const f = gf('fp32'), b = gf('bf16');
      if (base) {
        const fb = gf('fp32 base'), bb = gf('bf16 base');
        console.log(`| ${name} | ${rows} x ${inF} -> ${outF} | ${p} | ${f.toFixed(1)} | ${fb.toFixed(1)} | ${(f / fb).toFixed(2)} | ${b.toFixed(1)} | ${bb.toFixed(1)} | ${(b / bb).toFixed(2)} | ${(b / f).toFixed(2)} |`);
      } else console.log(`| ${name} | ${rows} x ${inF} -> ${outF} | ${p} | ${f.toFixed(1)} | ${b.toFixed(1)} | ${(b / f).toFixed(2)} |`);
    }
  }
}
console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
