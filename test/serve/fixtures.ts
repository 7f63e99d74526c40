// Run directories for the dashboard tests, written file by file (no training): spec.yaml,
// metrics.jsonl (training and evaluation lines, optionally a damaged line and a torn last line),
// a synthetic trace.jsonl/trace.json among five actors, a checkpoint placeholder, sample grids.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { gridPng } from '../../src/io/png.ts';
import { toChromeTrace } from '../../src/trace/chromeTrace.ts';
import { mermaidStep } from '../../src/trace/mermaid.ts';
import type { TraceEvent } from '../../src/trace/event.ts';
import { EVALS_DIR, FAILURE_FILE, evalGridName } from '../../src/run/layout.ts';

export interface FixtureRun {
  dir: string;
  trainLines: number;
  evalLines: number;
  events: TraceEvent[];
}

/** Training line `step` of a run whose loss falls from `start`. */
export function trainLine(step: number, start = 1.5): Record<string, number> {
  const loss = start / (1 + step / 20);
  return { step, loss, lr: 1e-3 * Math.min(1, step / 10), grad_norm: 1 / (1 + step / 10), diff: loss * 0.8, proj: loss * 0.2, wall_s: step * 0.5, it_s: 2 };
}

export function evalLine(step: number, fd: number): Record<string, number | boolean> {
  return { step, eval: true, wall_s: step * 0.5, fd, sfid: fd * 3, is: 1.5, precision: 0.2, recall: 0.3, cknna: 0.25, probe: 0.4, val_loss: 0.9 };
}

/** Five actors, `steps` steps: next (coordinator→data), forward (→student), ema (→teacher), evaluate (→evaluator, once). */
export function syntheticTrace(steps: number, t0 = 1_700_000_000_000): TraceEvent[] {
  const out: TraceEvent[] = [];
  let id = 0, t = t0;
  const ask = (to: string, type: string, step: number | null, bytes: number, work: number) => {
    id++;
    out.push({ id, kind: 'request', from: 'coordinator', to, type, step, time: t, bytes, tensors: [] });
    const started = t + 1, finished = started + work;
    t = finished + 1;
    out.push({ id, kind: 'reply', from: to, to: 'coordinator', type, step, time: t, started, finished, bytes: bytes * 2, tensors: [{ name: 'x', shape: [bytes / 4], dtype: 'float32', mean: 0, std: 1, maxAbs: 1, nonFinite: 0 }] });
    t++;
  };
  for (let s = 1; s <= steps; s++) {
    ask('data', 'next', s, 64, 2);
    ask('student', 'forward', s, 256, 10);
    ask('teacher', 'ema', s, 128, 3);
  }
  ask('evaluator', 'evaluate', steps, 512, 20);
  return out;
}

const grid = (n: number, cols: number, shade: number) => gridPng(new Float32Array(n * 3 * 8 * 8).fill(shade), n, 3, 8, 8, cols, 1, 2);

export function writeRun(dir: string, o: { name: string; seed?: number; steps?: number; trained: number; evalEvery?: number; fdStart?: number; lossStart?: number; bad?: boolean; trace?: boolean; finished?: boolean; failed?: string }): FixtureRun {
  mkdirSync(dir, { recursive: true });
  const total = o.steps ?? o.trained;
  writeFileSync(path.join(dir, 'spec.yaml'), stringify({ name: o.name, seed: o.seed ?? 0, methods: ['repa'], protocol: 'repa', train: { steps: total, log_every: 1, eval_every: o.evalEvery ?? 10 } }));
  const lines: string[] = [];
  let evals = 0;
  for (let s = 1; s <= o.trained; s++) {
    lines.push(JSON.stringify(trainLine(s, o.lossStart)));
    if (s === 3 && o.bad) lines.push('{"step": 3, "loss": 0.5, this is not json');
    if (s % (o.evalEvery ?? 10) === 0) {
      lines.push(JSON.stringify(evalLine(s, (o.fdStart ?? 300) / (1 + s / 10))));
      evals++;
      mkdirSync(path.join(dir, EVALS_DIR), { recursive: true });
      writeFileSync(path.join(dir, EVALS_DIR, evalGridName(s)), grid(20, 10, s / (o.trained + 1)));
    }
  }
  // A torn last line (a writer mid-append) after the good ones.
  writeFileSync(path.join(dir, 'metrics.jsonl'), lines.map((l) => `${l}\n`).join('') + (o.bad ? '{"step": 99, "lo' : ''));
  if (o.finished ?? true) {
    writeFileSync(path.join(dir, 'checkpoint.safetensors'), 'placeholder: the dashboard only checks that it exists');
    writeFileSync(path.join(dir, 'samples.png'), grid(20, 2, 0.5));
  }
  if (o.failed) writeFileSync(path.join(dir, FAILURE_FILE), JSON.stringify({ step: o.trained, reason: o.failed, error: 'RunFailure', time: new Date(0).toISOString() }));
  const events = o.trace === false ? [] : syntheticTrace(4);
  if (events.length) {
    writeFileSync(path.join(dir, 'trace.jsonl'), events.map((e) => `${JSON.stringify(e)}\n`).join(''));
    writeFileSync(path.join(dir, 'trace.json'), JSON.stringify(toChromeTrace(events)));
    writeFileSync(path.join(dir, 'step-1.mmd'), mermaidStep(events, { step: 1 }).text);
  }
  writeFileSync(path.join(dir, 'inputs.json'), JSON.stringify({ spec: { name: o.name }, data: null, files: { 'encoder.checkpoint': 'ab'.repeat(32) } }, null, 2));
  return { dir, trainLines: o.trained, evalLines: evals, events };
}
