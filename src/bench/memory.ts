// `diffactor bench memory`: the process's resident memory over a long actor run, in fp32 and bf16
// (issue 18: "RSS flat (< 5 % growth) over 1,000 steps in both precisions"). The run is the actor
// benchmark's REPA step at P1 (src/bench/actors.ts: every role in its own worker thread, so the
// process's RSS holds every actor's tensors). RSS is sampled in the run's onStep callback every
// `every` steps; growth is measured from `start` (after the tensor pools have filled) to the last
// step, with a least-squares slope over the same samples. Memory does not depend on the machine's
// load, so unlike the timing benchmarks this one can run beside other work. It measures and prints;
// it asserts nothing.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { backendInfo } from '../kernels/index.ts';
import { runActors } from '../run/actorRun.ts';
import { ACTOR_BENCH_CONFIGS, ACTOR_BENCH_SPEC, actorBenchSpec, benchDataset, type ActorBenchConfig } from './actors.ts';

export type Precision = 'fp32' | 'bf16';

export interface MemorySample { step: number; rss_mb: number; heap_used_mb: number; array_buffers_mb: number }

export interface MemoryBenchResult {
  config: string;
  precision: Precision;
  steps: number;
  /** The step growth is measured from (the pools have filled by then). */
  start: number;
  rss_start_mb: number;
  rss_end_mb: number;
  rss_peak_mb: number;
  /** (rss at the last step − rss at `start`) / rss at `start`, in percent: < 5 is the "flat". */
  growth_pct: number;
  /** Least-squares slope of RSS over the samples from `start` on, MB per 1,000 steps. */
  slope_mb_per_1000_steps: number;
  samples: MemorySample[];
}

export interface MemoryBenchReport {
  results: MemoryBenchResult[];
  spec: string;
  dataset: string;
  command: string;
  env: { loadavg_start: number[]; loadavg_end: number[]; cpus: number; backend: string; isa: string; node: string };
}

const MB = 2 ** 20;

/** Slope of y over x by least squares (0 for fewer than two points). */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) ** 2; }
  return sxx === 0 ? 0 : sxy / sxx;
}

/** Growth from `start` on, from samples in step order. */
export function summarise(samples: MemorySample[], start: number): Pick<MemoryBenchResult, 'rss_start_mb' | 'rss_end_mb' | 'rss_peak_mb' | 'growth_pct' | 'slope_mb_per_1000_steps'> {
  const from = samples.filter((s) => s.step >= start);
  if (from.length < 2) throw new Error(`bench memory: fewer than two samples from step ${start} on (${samples.length} in all): take more steps or sample more often`);
  const first = from[0].rss_mb, last = from[from.length - 1].rss_mb;
  return {
    rss_start_mb: first, rss_end_mb: last, rss_peak_mb: Math.max(...from.map((s) => s.rss_mb)),
    growth_pct: ((last - first) / first) * 100,
    slope_mb_per_1000_steps: slope(from.map((s) => s.step), from.map((s) => s.rss_mb)) * 1000,
  };
}

export async function benchMemory(opts: {
  json: boolean;
  /** 40 steps sampled every 10 from step 10 (smoke runs). */
  quick?: boolean;
  steps?: number;
  every?: number;
  start?: number;
  configs?: ActorBenchConfig[];
  precisions?: Precision[];
  dataset?: string;
  specFile?: string;
}): Promise<MemoryBenchReport> {
  const steps = opts.steps ?? (opts.quick ? 40 : 1000);
  const every = opts.every ?? (opts.quick ? 10 : 50);
  const start = opts.start ?? (opts.quick ? 10 : 100);
  const configs = opts.configs ?? ACTOR_BENCH_CONFIGS.filter((c) => c.config === 'P1');
  const precisions = opts.precisions ?? ['fp32', 'bf16'];
  const specFile = opts.specFile ?? ACTOR_BENCH_SPEC;
  const raw = parseYaml(readFileSync(specFile, 'utf8')) as Record<string, any>;
  const dataset = opts.dataset ?? benchDataset();
  const log = (s: string) => { if (!opts.json) process.stderr.write(s); };
  const loadStart = os.loadavg();
  const results: MemoryBenchResult[] = [];
  for (const c of configs) {
    for (const precision of precisions) {
      log(`RSS over ${steps} steps, REPA ${c.config} on actors, ${precision} `);
      const spec = actorBenchSpec({ ...raw, train: { ...raw.train, precision } }, c, dataset, steps, specFile);
      const samples: MemorySample[] = [];
      const sample = (step: number) => {
        const m = process.memoryUsage();
        samples.push({ step, rss_mb: +(m.rss / MB).toFixed(1), heap_used_mb: +(m.heapUsed / MB).toFixed(1), array_buffers_mb: +(m.arrayBuffers / MB).toFixed(1) });
      };
      const out = mkdtempSync(path.join(os.tmpdir(), 'diffactor-bench-memory-'));
      try {
        await runActors({
          spec, out, quiet: true, samples: false,
          onStep: (l) => {
            if (l.step % every === 0 || l.step === steps) sample(l.step);
            if (!opts.json && l.step % (every * 4) === 0) log('.');
          },
        });
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
      const r: MemoryBenchResult = { config: c.config, precision, steps, start, ...summarise(samples, start), samples };
      results.push(r);
      log(` ${r.rss_start_mb.toFixed(0)} → ${r.rss_end_mb.toFixed(0)} MB (${r.growth_pct >= 0 ? '+' : ''}${r.growth_pct.toFixed(2)} %, ${r.slope_mb_per_1000_steps.toFixed(1)} MB per 1000 steps)\n`);
    }
  }
  const report: MemoryBenchReport = {
    results,
    spec: path.relative(process.cwd(), specFile) || specFile,
    dataset,
    command: `npx diffactor bench memory${opts.json ? ' --json' : ''}${opts.quick ? ' --quick' : ''}`,
    env: { loadavg_start: loadStart, loadavg_end: os.loadavg(), cpus: os.cpus().length, backend: backendInfo.backend, isa: backendInfo.isa, node: process.version },
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 1)}\n`);
  else {
    process.stdout.write(`| config | precision | steps | RSS at step ${start} | RSS at the end | peak | growth | slope per 1000 steps |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n`);
    for (const r of results) process.stdout.write(`| ${r.config} | ${r.precision} | ${r.steps} | ${r.rss_start_mb.toFixed(0)} MB | ${r.rss_end_mb.toFixed(0)} MB | ${r.rss_peak_mb.toFixed(0)} MB | ${r.growth_pct.toFixed(2)} % | ${r.slope_mb_per_1000_steps.toFixed(1)} MB |\n`);
  }
  return report;
}
