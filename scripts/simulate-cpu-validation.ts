// The cost model against this machine (issue 16, docs/simulate.md): simulates the P1 and P2 steps
// that `diffactor bench train-step` times (a plain SiT step: forward, velocity loss, backward,
// AdamW, EMA; the same presets and batches: bench/trainStep.ts TRAIN_STEP_CONFIGS) on the CPU
// profile measured now (bench/devices.ts: native SGEMM 512³ and a 64 MB copy), and compares with
// the measured seconds per step: from a `bench train-step --json` report when one is given, else
// timed here on the same harness the benchmark times (bench/trainStepCore.ts: median of 5 steps
// after one warm-up; no PyTorch peer). Usage:
//   npx tsx scripts/simulate-cpu-validation.ts [bench.json]
// Both sides are measured on the same machine; under load (`uptime`) both are inflated alike only
// if the load stays the same, so run it on a quiet machine for a number worth quoting.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parseSpec } from '../src/spec/load.ts';
import { simulate } from '../src/bench/simulate.ts';
import { measureCpu } from '../src/bench/devices.ts';
import { TRAIN_STEP_CONFIGS, type TrainStepReport } from '../src/bench/trainStep.ts';
import { sitPreset } from '../src/models/presets.ts';
import { createTrainStep } from '../src/bench/trainStepCore.ts';

const file = process.argv[2];
const bench = file ? JSON.parse(readFileSync(file, 'utf8')) as TrainStepReport : null;

/** Median seconds of 5 steps of the benchmark's harness after one warm-up step. */
function timeHarness(preset: string, batch: number): number {
  const h = createTrainStep(sitPreset(preset), batch);
  h.step();
  const ts: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    h.step();
    ts.push((performance.now() - t0) / 1000);
  }
  return ts.sort((a, b) => a - b)[2];
}
const device = measureCpu();
process.stdout.write(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores; ${device.source}; measured: ${file ?? 'the benchmark harness, here'}\n\n`);
process.stdout.write('| config | batch | simulated s/step | measured s/step | error |\n| --- | ---: | ---: | ---: | ---: |\n');
for (const c of TRAIN_STEP_CONFIGS) {
  const p = sitPreset(c.preset);
  const spec = parseSpec({
    name: `bench-${c.config}`, methods: ['sit-baseline'], data: { size: p.inputSize }, model: { preset: c.preset },
    diffusion: { objective: 'velocity' }, train: { batch_size: c.batch, ema_decay: 0.9999 }, sample: { sampler: 'euler' },
  });
  const r = simulate(spec, { device, batch: c.batch });
  const measured = bench ? bench.results.find((x) => x.config === c.config)?.seconds_per_step : timeHarness(c.preset, c.batch);
  const err = measured ? `${(((r.stepSeconds - measured) / measured) * 100).toFixed(0)} %` : '—';
  process.stdout.write(`| ${c.config} | ${c.batch} | ${r.stepSeconds.toFixed(3)} | ${measured?.toFixed(3) ?? '—'} | ${err} |\n`);
}
