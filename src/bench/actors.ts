// The actor-runtime benchmark behind `diffactor bench actors`: seconds per REPA training step of
// the actor run (src/run/actorRun.ts: every role in its own worker thread, tensors crossing as
// SharedArrayBuffer messages, the step as the xstate machine of src/protocols/repa.ts) against the
// reference trainer (src/run/reference.ts, one in-process loop) on the same spec and seed, for
// the project's configs P1 and P2. It measures and prints; it asserts nothing.
//
// The two sides alternate step by step in one process: the reference trainer takes its step k
// inside the actor run's onStep callback for step k, when the step machine has finished (release
// included) and the next step has not started, so the workers are idle while it runs and load
// from other jobs on the shared machine hits both sides alike. An actor step is timed from the
// end of the previous callback to the start of its own (worker start-up is before step 1 and
// never counted; warm-up steps are dropped). Both sides see the same batches and noise, so their
// losses agree (`loss_rel_diff`): they did the same work.
// Not here: where the actor step's time goes (docs/performance.md has the profile).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { backendInfo } from '../kernels/index.ts';
import { openDataset } from '../data/index.ts';
import { parseSpec } from '../spec/load.ts';
import type { RunSpec } from '../spec/schema.ts';
import { runActors } from '../run/actorRun.ts';
import { clearPool } from '../tensor/pool.ts';
import { Trainer } from '../run/reference.ts';
import { openTrainData } from '../build/setup.ts';

export interface ActorBenchConfig {
  /** Name in the report (P1, P2). */
  config: string;
  /** Model preset (sitPreset name); its sizes replace the spec's model section. */
  preset: string;
  batch: number;
  /** Image side: the token grid is size / patch (P1: 8 / 1, P2: 32 / 2). */
  size: number;
}

/**
 * The train-step benchmark's configs on REPA: P1's transformer (hidden 192, depth 6, 3 heads,
 * patch 1, 64 tokens) on 8×8 images (1 channel where P1's latents have 4: only the patch
 * embedding differs), P2 exactly (1×32×32, patch 2, 256 tokens). Batches as in bench train-step.
 */
export const ACTOR_BENCH_CONFIGS: ActorBenchConfig[] = [
  { config: 'P1', preset: 'SiT-P1', batch: 64, size: 8 },
  { config: 'P2', preset: 'SiT-P2', batch: 16, size: 32 },
];

export interface Spread { median: number; q1: number; q3: number; min: number; max: number }

export interface ActorBenchResult {
  config: string;
  /** Median seconds per step: the actor run, the in-process reference trainer. */
  actor_s: number;
  inprocess_s: number;
  /** actor_s / inprocess_s: at most 1 meets the goal. */
  ratio: number;
  /** Median of the per-step ratios of adjacent (same step number) actor and reference steps. */
  paired_ratio: number;
  actor: Spread;
  inprocess: Spread;
  batch: number;
  tokens: number;
  steps: number;
  warmup: number;
  /** Largest |actor loss − reference loss| / |reference loss| over all steps (same work: ~1e-7). */
  loss_rel_diff: number;
  /** Every timed step, seconds, in order. */
  actor_times: number[];
  inprocess_times: number[];
}

export interface ActorBenchReport {
  results: ActorBenchResult[];
  spec: string;
  /** The dataset both sides trained on (Fashion-MNIST, or the builtin set when it is missing). */
  dataset: string;
  command: string;
  env: {
    loadavg_start: number[];
    loadavg_end: number[];
    cpus: number;
    cpu: string;
    backend: string;
    isa: string;
    threads: number;
    node: string;
  };
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ACTOR_BENCH_SPEC = path.join(root, 'specs/repa.yaml');

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q, lo = Math.floor(i), hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

export function spread(xs: number[]): Spread {
  if (!xs.length) throw new Error('spread: no samples');
  const s = [...xs].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), q1: quantile(s, 0.25), q3: quantile(s, 0.75), min: s[0], max: s[s.length - 1] };
}

/** Fashion-MNIST when it is installed, else the builtin shapes (the report says which). */
export function benchDataset(): string {
  try {
    openDataset('fashion-mnist');
    return 'fashion-mnist';
  } catch {
    return 'builtin';
  }
}

/**
 * The REPA spec with the config's model, batch and image side, on a seed-initialised encoder; no checkpoint, evaluation or
 * metrics line inside the timed steps (the in-process side writes none either).
 */
export function actorBenchSpec(raw: Record<string, any>, c: ActorBenchConfig, dataset: string, steps: number, source: string): RunSpec {
  return parseSpec({
    ...raw,
    name: `${raw.name ?? 'spec'}-bench-${c.config}`,
    data: { ...raw.data, dataset, size: c.size },
    model: { preset: c.preset },
    // A seed-initialised ViT-P/4 encoder whatever the spec ships: it fits any dataset and image side,
    // and keeps the timings comparable with those in docs/performance.md (speed, not quality).
    encoder: { ...raw.encoder, checkpoint: null, preset: 'ViT-P/4' },
    train: { ...raw.train, steps, batch_size: c.batch, checkpoint_every: steps + 1, log_every: steps + 1, eval_every: 0 },
  }, `${source} (bench ${c.config})`);
}

/** One config: the actor run with the reference trainer's steps interleaved. */
async function measure(spec: RunSpec, warmup: number): Promise<{ actor: number[]; ref: number[]; lossDiff: number; tokens: number }> {
  const trainer = new Trainer(spec, openTrainData(spec));
  const actor: number[] = [], ref: number[] = [];
  let lossDiff = 0;
  let mark = 0;
  const out = mkdtempSync(path.join(os.tmpdir(), 'diffactor-bench-actors-'));
  try {
    await runActors({
      spec, out, quiet: true, samples: false,
      onStarted: () => { mark = performance.now(); },
      onStep: (log) => {
        const a = (performance.now() - mark) / 1000;
        const t0 = performance.now();
        const r = trainer.trainStep();
        const b = (performance.now() - t0) / 1000;
        if (r.step !== log.step) throw new Error(`bench actors: reference step ${r.step} beside actor step ${log.step}`);
        lossDiff = Math.max(lossDiff, Math.abs(log.loss - r.loss) / Math.max(Math.abs(r.loss), 1e-30));
        if (log.step > warmup) { actor.push(a); ref.push(b); }
        mark = performance.now();
      },
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
    // The reference trainer's step buffers sit in this thread's pool for good: drop them before
    // the next config (P1's would otherwise stay resident beside P2's ~8 GB).
    clearPool();
  }
  const g = trainer.config.inputSize / trainer.config.patchSize;
  return { actor, ref, lossDiff, tokens: g * g };
}

export async function benchActors(opts: {
  json: boolean;
  /** 3 timed steps after 1 warm-up (smoke runs). */
  quick?: boolean;
  configs?: ActorBenchConfig[];
  /** Timed steps and warm-up steps (default 20 after 3; quick 3 after 1). */
  steps?: number;
  warmup?: number;
  /** Spec file (default specs/repa.yaml) and dataset (default: fashion-mnist if installed, else builtin). */
  specFile?: string;
  dataset?: string;
}): Promise<ActorBenchReport> {
  const configs = opts.configs ?? ACTOR_BENCH_CONFIGS;
  const steps = opts.steps ?? (opts.quick ? 3 : 20), warmup = opts.warmup ?? (opts.quick ? 1 : 3);
  const specFile = opts.specFile ?? ACTOR_BENCH_SPEC;
  const raw = parseYaml(readFileSync(specFile, 'utf8')) as Record<string, any>;
  const dataset = opts.dataset ?? benchDataset();
  const log = (s: string) => { if (!opts.json) process.stderr.write(s); };
  const loadStart = os.loadavg();
  const results: ActorBenchResult[] = [];
  for (const c of configs) {
    log(`actors vs in-process, REPA ${c.config} (${c.preset}, batch ${c.batch}, ${c.size}×${c.size} ${dataset}) `);
    const spec = actorBenchSpec(raw, c, dataset, warmup + steps, specFile);
    const m = await measure(spec, warmup);
    const a = spread(m.actor), r = spread(m.ref);
    results.push({
      config: c.config, actor_s: a.median, inprocess_s: r.median, ratio: a.median / r.median,
      paired_ratio: spread(m.actor.map((t, i) => t / m.ref[i])).median,
      actor: a, inprocess: r, batch: c.batch, tokens: m.tokens, steps: m.actor.length, warmup, loss_rel_diff: m.lossDiff,
      actor_times: m.actor.map((t) => +t.toFixed(4)), inprocess_times: m.ref.map((t) => +t.toFixed(4)),
    });
    log(`${a.median.toFixed(3)} s/step on actors, ${r.median.toFixed(3)} in-process (x${(a.median / r.median).toFixed(3)})\n`);
  }
  const report: ActorBenchReport = {
    results,
    spec: path.relative(root, specFile) || specFile,
    dataset,
    command: `npx diffactor bench actors${opts.json ? ' --json' : ''}${opts.quick ? ' --quick' : ''}`,
    env: {
      loadavg_start: loadStart, loadavg_end: os.loadavg(), cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown',
      backend: backendInfo.backend, isa: backendInfo.isa, threads: backendInfo.threads, node: process.version,
    },
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else printActorBenchTable(report);
  return report;
}

/** Markdown table: one row per config, medians with their interquartile ranges. */
export function printActorBenchTable(r: ActorBenchReport, write: (s: string) => void = (s) => process.stdout.write(s)): void {
  const f = (s: Spread) => `${s.median.toFixed(3)} (${s.q1.toFixed(3)}–${s.q3.toFixed(3)})`;
  write('| config | batch | tokens | actor s/step (IQR) | in-process s/step (IQR) | ratio actor / in-process | paired ratio |\n');
  write('| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n');
  for (const x of r.results) {
    write(`| ${x.config} | ${x.batch} | ${x.tokens} | ${f(x.actor)} | ${f(x.inprocess)} | ${x.ratio.toFixed(3)} | ${x.paired_ratio.toFixed(3)} |\n`);
  }
  write(`\n${r.spec} on ${r.dataset}; ${r.results[0]?.steps ?? 0} timed steps per side after ${r.results[0]?.warmup ?? 0} warm-up, interleaved step by step\n`);
  write(`load average ${r.env.loadavg_start.map((v) => v.toFixed(2)).join(' ')} (start), ${r.env.loadavg_end.map((v) => v.toFixed(2)).join(' ')} (end); ${r.env.cpus} cpus; ${r.env.backend} ${r.env.isa}, ${r.env.threads} threads\n`);
}
