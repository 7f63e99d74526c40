// DDT's encoder-sharing claim, measured (issue 13 item 1; docs/methods.md, "DDT"): at sampling,
// reusing the condition encoder's state z over several steps cuts model cost with little FD loss
// (Wang et al., arXiv 2504.05741 §"Encoder sharing"; MCG-NJU/DDT
// src/diffusion/stateful_flow_matching/sharing_sampling.py). For one trained DDT checkpoint (its EMA
// weights) this draws --samples images per configuration with the Euler sampler at --steps steps and
// measures FD (`diffactor eval`'s Evaluation), for the uniform schedule and the statistical DP
// schedule at each period r in --periods: ⌈N/r⌉ (uniform) or ⌊N/r⌋ (DP) encoder evaluations per
// image, the decoder still runs at every one of the N steps. Writes FILE.json (every
// configuration's metrics, encoder and decoder evaluations, sampling seconds) and FILE.svg (FD
// against encoder evaluations per image, one line per schedule).
//   npx tsx scripts/ddt-sharing.ts --checkpoint runs/ddt/checkpoint.safetensors \
//     [--steps 40] [--periods 1,2,4,5,8,10] [--samples 1000] [--out docs/img/ddt-sharing]
// One CFG pair counts as one evaluation (DDT always runs the doubled batch; docs/methods.md).
// Several checkpoints (seeds) measured this way make one plot, the mean over seeds with their range
// shaded, one line per schedule:
//   npx tsx scripts/ddt-sharing.ts --combine a.json,b.json --out docs/studies/ddt/sharing-seeds
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { evaluateCheckpoint } from '../src/cli/eval.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { writeLinePlot, type Series } from '../src/io/svgPlot.ts';
import { loadCheckpoint } from '../src/build/checkpoint.ts';
import { dpBudget, uniformSchedule } from '../src/methods/ddt/sharing.ts';

export interface DdtSharingOptions { checkpoint: string; steps: number; periods: number[]; samples: number; out: string; quiet?: boolean }

export interface SharingPoint {
  schedule: 'uniform' | 'dp'; period: number; encoderEvals: number; decoderEvals: number; seconds: number; metrics: Record<string, number>;
}

export function ddtSharing(o: DdtSharingOptions): SharingPoint[] {
  const c = loadCheckpoint(o.checkpoint);
  if (!c.spec.methods.includes('ddt')) throw new Error(`${o.checkpoint}: not a DDT checkpoint (its spec's methods are [${c.spec.methods.join(', ')}]); encoder sharing needs one`);
  for (const r of o.periods) if (!Number.isInteger(r) || r < 1 || r > o.steps) throw new Error(`--periods: ${r} is not an integer in 1..--steps (${o.steps})`);
  const points: SharingPoint[] = [];
  // Period 1 recomputes every step under either schedule: measured once, it starts both lines.
  const configs = [...new Set(o.periods)].sort((a, b) => a - b).flatMap((period) => (period === 1 ? [['uniform', 1] as const] : (['uniform', 'dp'] as const).map((s) => [s, period] as const)));
  for (const [schedule, period] of configs) {
    const t0 = performance.now();
    const metrics = evaluateCheckpoint({
      checkpoint: o.checkpoint, samples: o.samples, sampleSteps: o.steps, json: true, // one JSON line per configuration on stdout
      // sample.steps bounds ddt.share_period when the spec is checked; the draw uses eval's steps.
      set: ['sample.sampler=euler', `sample.steps=${o.steps}`, `ddt.share_schedule=${schedule}`, `ddt.share_period=${period}`],
    });
    const encoderEvals = schedule === 'uniform' ? uniformSchedule(o.steps, period).length : dpBudget(o.steps, period);
    points.push({ schedule, period, encoderEvals, decoderEvals: o.steps, seconds: (performance.now() - t0) / 1000, metrics: { ...metrics } });
    if (!o.quiet) console.error(`ddt-sharing: ${schedule} r=${period}: ${encoderEvals} encoder evaluations per image, FD ${metrics.fd.toFixed(2)}`);
  }
  mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
  writeFileAtomic(`${o.out}.json`, `${JSON.stringify({ checkpoint: o.checkpoint, step: c.state.step, steps: o.steps, samples: o.samples, points }, null, 1)}\n`);
  const full = points.find((p) => p.period === 1);
  const series: Series[] = (['uniform', 'dp'] as const).map((s) => {
    const line = [...(full ? [full] : []), ...points.filter((p) => p.schedule === s && p.period > 1)].sort((a, b) => a.encoderEvals - b.encoderEvals);
    return { name: s === 'uniform' ? 'uniform schedule' : 'statistical DP schedule', markers: true, x: line.map((p) => p.encoderEvals), y: line.map((p) => p.metrics.fd) };
  });
  writeLinePlot(`${o.out}.svg`, series, { title: `DDT encoder sharing: FD (${o.samples} samples, Euler ${o.steps} steps) at step ${c.state.step}`, xLabel: 'encoder evaluations per image', yLabel: 'FD' });
  return points;
}

interface SharingFile { checkpoint: string; step: number; steps: number; samples: number; points: SharingPoint[] }

/** One plot of several ddtSharing results (seeds): per schedule, FD's mean over the files and its range. */
export function combineSharing(files: string[], out: string): Series[] {
  const runs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as SharingFile);
  const first = runs[0];
  for (const [i, r] of runs.entries()) {
    if (r.steps !== first.steps || r.samples !== first.samples || r.step !== first.step) {
      throw new Error(`--combine: ${files[i]} measured ${r.samples} samples at ${r.steps} sampler steps on a step-${r.step} checkpoint, ${files[0]} ${first.samples} at ${first.steps} on step ${first.step}; only like measurements combine`);
    }
  }
  const series: Series[] = (['uniform', 'dp'] as const).map((s) => {
    // Period 1 starts both lines (the same configuration under either schedule).
    const keys = [...new Set(first.points.filter((p) => p.period === 1 || p.schedule === s).map((p) => p.period))].sort((a, b) => b - a);
    const cols = keys.map((period) => runs.map((r, i) => {
      const p = r.points.find((q) => q.period === period && (period === 1 || q.schedule === s));
      if (!p) throw new Error(`--combine: ${files[i]} has no ${s} point at period ${period}`);
      return p;
    }));
    const fds = cols.map((c) => c.map((p) => p.metrics.fd));
    return {
      name: `${s === 'uniform' ? 'uniform schedule' : 'statistical DP schedule'} (${runs.length} seeds)`, markers: true,
      x: cols.map((c) => c[0].encoderEvals), y: fds.map((v) => v.reduce((a, b) => a + b, 0) / v.length),
      lo: fds.map((v) => Math.min(...v)), hi: fds.map((v) => Math.max(...v)),
    };
  });
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeLinePlot(`${out}.svg`, series, { title: `DDT encoder sharing: FD (${first.samples} samples, Euler ${first.steps} steps) at step ${first.step}, mean and range over ${runs.length} seeds`, xLabel: 'encoder evaluations per image', yLabel: 'FD', width: 760 });
  return series;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: {
    checkpoint: { type: 'string' }, steps: { type: 'string', default: '40' }, periods: { type: 'string', default: '1,2,4,5,8,10' },
    samples: { type: 'string', default: '1000' }, out: { type: 'string', default: 'docs/img/ddt-sharing' }, combine: { type: 'string' },
  } });
  if (values.combine) {
    combineSharing(values.combine.split(','), values.out!);
    process.exit(0);
  }
  if (!values.checkpoint) throw new Error('ddt-sharing: --checkpoint FILE (a DDT run\'s checkpoint.safetensors) is required');
  ddtSharing({ checkpoint: values.checkpoint, steps: Number(values.steps), periods: values.periods!.split(',').map(Number), samples: Number(values.samples), out: values.out! });
}
