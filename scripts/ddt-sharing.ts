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
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { mkdirSync } from 'node:fs';
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
    return { name: s === 'uniform' ? 'uniform schedule' : 'statistical DP schedule', x: line.map((p) => p.encoderEvals), y: line.map((p) => p.metrics.fd) };
  });
  writeLinePlot(`${o.out}.svg`, series, { title: `DDT encoder sharing: FD (${o.samples} samples, Euler ${o.steps} steps) at step ${c.state.step}`, xLabel: 'encoder evaluations per image', yLabel: 'FD' });
  return points;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: {
    checkpoint: { type: 'string' }, steps: { type: 'string', default: '40' }, periods: { type: 'string', default: '1,2,4,5,8,10' },
    samples: { type: 'string', default: '1000' }, out: { type: 'string', default: 'docs/img/ddt-sharing' },
  } });
  if (!values.checkpoint) throw new Error('ddt-sharing: --checkpoint FILE (a DDT run\'s checkpoint.safetensors) is required');
  ddtSharing({ checkpoint: values.checkpoint, steps: Number(values.steps), periods: values.periods!.split(',').map(Number), samples: Number(values.samples), out: values.out! });
}
