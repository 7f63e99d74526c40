// Where one SiT training step's time goes, by kernel: every K method (src/kernels/index.ts) is
// wrapped with a CPU-time counter (process.cpuUsage, user + system), gemm calls keyed by their
// shape (m x n x k, transposes, bias, precision). Run with DIFFACTOR_THREADS=1 so the addon's
// pool runs inline on this thread and CPU time is the kernel's work alone (other jobs holding the
// core do not inflate it). The step is src/bench/trainStepCore.ts's, fp32 and bf16 alternating;
// "JS" is the step's CPU time outside any kernel (tape, allocation, copies). Measures and prints;
// asserts nothing.
//   DIFFACTOR_THREADS=1 npx tsx scripts/train_step_profile.ts [P1|P2] [steps]
import os from 'node:os';
import { K } from '../src/kernels/index.ts';
import type { GemmArgs, Kernels } from '../src/kernels/types.ts';
import { sitPreset } from '../src/models/presets.ts';
import { createTrainStep } from '../src/bench/trainStepCore.ts';
import { TRAIN_STEP_CONFIGS } from '../src/bench/trainStep.ts';

const which = process.argv[2] ?? 'P1';
const steps = Number(process.argv[3] ?? 3);
const tc = TRAIN_STEP_CONFIGS.find((c) => c.config === which);
if (!tc) throw new Error(`config: expected one of ${TRAIN_STEP_CONFIGS.map((c) => c.config).join(', ')}, got '${which}'`);
if (process.env.DIFFACTOR_THREADS !== '1') console.log('warning: DIFFACTOR_THREADS is not 1; CPU time then sums the pool threads');

const cpu = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }; // ms
interface Row { ms: number; calls: number; flops: number }
let rows = new Map<string, Row>();
const add = (key: string, ms: number, flops: number) => {
  const r = rows.get(key) ?? { ms: 0, calls: 0, flops: 0 };
  r.ms += ms; r.calls++; r.flops += flops;
  rows.set(key, r);
};
const gemmKey = (g: GemmArgs): string => {
  const kind = g.transA ? 'dW (transA)' : g.transB ? 'NT (fwd)' : 'NN (dX)';
  return `gemm ${g.precision ?? 'fp32'} ${kind} ${g.m}x${g.n}x${g.k}${(g.batch ?? 1) > 1 ? ` b${g.batch}` : ''}${g.bias ? ' +bias' : ''}`;
};
const k = K as unknown as Record<string, (...a: unknown[]) => unknown>;
for (const name of Object.keys(K) as (keyof Kernels)[]) {
  if (name === 'name') continue;
  const fn = k[name];
  k[name] = (...a: unknown[]) => {
    const t0 = cpu();
    const r = fn(...a);
    const ms = cpu() - t0;
    if (name === 'gemm') {
      const g = a[0] as GemmArgs;
      add(gemmKey(g), ms, 2 * g.m * g.n * g.k * (g.batch ?? 1));
    } else add(name, ms, 0);
    return r;
  };
}

const config = sitPreset(tc.preset);
const harness = { fp32: createTrainStep(config, tc.batch, 0, 'fp32'), bf16: createTrainStep(config, tc.batch, 0, 'bf16') };
const totals: Record<string, Map<string, Row>> = {};
const stepMs: Record<string, number[]> = { fp32: [], bf16: [] };
for (let s = 0; s < steps + 1; s++) {
  for (const p of ['fp32', 'bf16'] as const) {
    rows = new Map();
    const t0 = cpu();
    harness[p].step();
    const ms = cpu() - t0;
    if (s === 0) continue; // warm-up
    stepMs[p].push(ms);
    const acc = totals[p] ?? (totals[p] = new Map());
    for (const [key, r] of rows) {
      const a = acc.get(key) ?? { ms: 0, calls: 0, flops: 0 };
      a.ms += r.ms; a.calls += r.calls; a.flops += r.flops;
      acc.set(key, a);
    }
  }
}
console.log(`${tc.config} batch ${tc.batch}, ${steps} steps each after 1 warm-up, threads ${process.env.DIFFACTOR_THREADS ?? 'pool'}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (const p of ['fp32', 'bf16'] as const) {
  const total = stepMs[p].reduce((a, b) => a + b, 0) / steps;
  const acc = [...totals[p]].map(([key, r]) => ({ key, ms: r.ms / steps, calls: r.calls / steps, gflops: r.flops ? r.flops / (r.ms * 1e6) : 0 }));
  const kernelMs = acc.reduce((a, r) => a + r.ms, 0);
  acc.push({ key: 'JS (outside kernels)', ms: total - kernelMs, calls: 0, gflops: 0 });
  acc.sort((a, b) => b.ms - a.ms);
  console.log(`\n${p}: ${total.toFixed(1)} ms CPU per step (steps ${stepMs[p].map((x) => x.toFixed(0)).join(', ')})`);
  console.log('| kernel | ms/step | share | calls/step | GFLOP/s |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  const groups = new Map<string, number>();
  for (const r of acc) {
    const g = r.key.startsWith('gemm') ? r.key.split(' ').slice(0, 3).join(' ') : r.key;
    groups.set(g, (groups.get(g) ?? 0) + r.ms);
    if (r.ms / total < 0.004) continue;
    console.log(`| ${r.key} | ${r.ms.toFixed(2)} | ${((100 * r.ms) / total).toFixed(1)} % | ${r.calls} | ${r.gflops ? r.gflops.toFixed(1) : ''} |`);
  }
  console.log(`groups: ${[...groups].sort((a, b) => b[1] - a[1]).map(([g, ms]) => `${g} ${((100 * ms) / total).toFixed(1)} %`).join('; ')}`);
}
