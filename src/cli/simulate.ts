// `diffactor simulate`: one training step of a spec at any scale with shape-only tensors
// (bench/simulate.ts says which parts are the real code path and which are derived), costed on a
// device profile (bench/devices.ts). Prints per actor: parameters, FLOPs, bytes, optimiser and EMA
// state, messages and roofline times; the step time on N data-parallel replicas and its critical
// path; optionally a Perfetto trace of the step in virtual time. Not here: the simulation itself.
import { writeFileAtomic } from '../io/atomic.ts';
import { loadSpec } from '../spec/load.ts';
import { deviceProfile, type Precision } from '../bench/devices.ts';
import { perfettoTrace, simulate, type SimulationReport } from '../bench/simulate.ts';

export interface SimulateCliOptions {
  spec?: string;
  device: string;
  gpus: number;
  batch?: number;
  precision?: Precision;
  steps?: number;
  trace?: string;
  json?: boolean;
  set?: string[];
}

const G = (x: number) => (x / 1e9).toFixed(1);
const GB = (x: number) => (x / 2 ** 30).toFixed(2);
const M = (x: number) => (x / 1e6).toFixed(2);
const ms = (s: number) => (s * 1e3).toFixed(1);

export function formatReport(r: SimulationReport, steps?: number): string {
  const out: string[] = [];
  out.push(`spec ${r.spec} on ${r.gpus} × ${r.device} (${r.precision}), batch ${r.batch} per replica (${r.batch * r.gpus} in all)`);
  out.push(`device: ${r.deviceSource}`);
  out.push('');
  out.push('| actor | trainable M | frozen M | fwd GFLOP | bwd GFLOP | fwd ms | bwd ms | update ms | EMA ms | AdamW state GB | EMA GB | messages | message MB |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const a of r.actors) {
    const p = a.phases;
    out.push(`| ${a.actor} | ${M(a.trainable)} | ${M(a.frozen)} | ${G(p.forward.flops)} | ${G(p.backward.flops)} | ${ms(p.forward.seconds)} | ${ms(p.backward.seconds)} | ${ms(p.update.seconds)} | ${ms(p.ema.seconds)} | ${GB(a.optimizerBytes)} | ${GB(a.emaBytes)} | ${a.messages.count} | ${(a.messages.bytes / 2 ** 20).toFixed(1)} |`);
  }
  out.push('');
  out.push('Per sample, forward, in the papers\' unit (fvcore: MACs of linear/conv; attention products apart; layer-norm elements apart):');
  for (const [actor, g] of Object.entries(r.gmacsPerSample)) {
    out.push(`  ${actor}: ${g.linear.toFixed(2)} G linear MACs, ${g.attention.toFixed(2)} G attention MACs, ${g.normElements.toFixed(4)} G normalised elements`);
  }
  out.push(`Activations the tape holds when backward starts: ${GB(r.activationBytes)} GB (fp32; an upper bound of what PyTorch saves)`);
  out.push(`Messages (derived from the step plan): ${r.messages.map((m) => `${m.from}→${m.to} ${m.what} [${m.shape.join('×')}]`).join('; ')}`);
  if (r.gpus > 1) out.push(`Ring all-reduce of the student's and heads' gradients: ${GB(r.allReduce.bytes)} GB per replica, ${ms(r.allReduce.seconds)} ms`);
  out.push(`Critical path: ${r.criticalPath.join(' → ')}`);
  out.push(`Step (roofline, ideal peak): ${ms(r.stepSeconds)} ms${steps ? `; ${steps} steps ≈ ${(r.stepSeconds * steps / 3600).toFixed(1)} h` : ''}`);
  out.push(`(simulated in ${r.simulatedIn.toFixed(1)} s)`);
  return out.join('\n');
}

export async function simulateCommand(o: SimulateCliOptions): Promise<SimulationReport> {
  if (!o.spec) throw new Error('diffactor simulate: --spec <file> is required (e.g. specs/paper/repa-sit-xl2.yaml)');
  const spec = loadSpec(o.spec, o.set ?? []);
  const device = deviceProfile(o.device);
  const r = simulate(spec, { device, gpus: o.gpus, batch: o.batch, precision: o.precision });
  if (o.trace) writeFileAtomic(o.trace, JSON.stringify(perfettoTrace(r)));
  const steps = o.steps ?? spec.train.steps;
  process.stdout.write(o.json ? `${JSON.stringify({ ...r, steps, hours: r.stepSeconds * steps / 3600 })}\n` : `${formatReport(r, steps)}\n${o.trace ? `Perfetto trace (virtual time): ${o.trace}\n` : ''}`);
  return r;
}
