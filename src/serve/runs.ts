// What `diffactor serve` knows about a run directory, read from its files only: the spec
// (spec.yaml), metrics.jsonl (training lines and `eval` lines; a torn or bad line is skipped and
// counted, never fatal), the status (running: its .lock names a live process; failed: failure.json;
// finished: the last step reached train.steps; stopped: anything else), elapsed time and ETA, and
// which of the optional files exist (trace, evaluation grids, inputs record). Also: finding the
// runs under a directory (a run, or a study folder of runs one level down).
// Not here: HTTP (server.ts), following a growing file (tail.ts), drawing (page/).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { LOCK_FILE, processAlive } from '../io/lock.ts';
import { FAILURE_FILE, EVALS_DIR } from '../run/layout.ts';

export type MetricsLine = Record<string, number | boolean | string | null>;

export interface ParsedMetrics {
  lines: MetricsLine[];
  /** Lines that were not a JSON object with a numeric step (torn, damaged), skipped. */
  skipped: number;
}

/** One metrics.jsonl line, or null when it is not a JSON object with a numeric `step`. */
export function parseMetricsLine(line: string): MetricsLine | null {
  const s = line.trim();
  if (!s) return null;
  try {
    const v = JSON.parse(s) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
    const rec = v as MetricsLine;
    return typeof rec.step === 'number' && Number.isFinite(rec.step) ? rec : null;
  } catch {
    return null;
  }
}

/** Complete lines of `text` (a last line without its newline may still be being written: the caller decides). */
export function parseMetrics(text: string): ParsedMetrics {
  const lines: MetricsLine[] = [];
  let skipped = 0;
  for (const l of text.split('\n')) {
    if (!l.trim()) continue;
    const rec = parseMetricsLine(l);
    if (rec) lines.push(rec);
    else skipped++;
  }
  return { lines, skipped };
}

export type RunStatus = 'running' | 'finished' | 'failed' | 'stopped';

export interface RunInfo {
  /** Stable id in URLs: `<root index>/<path under that root>` ('.' for the root itself). */
  id: string;
  root: number;
  /** Path under the root ('' for the root itself). */
  rel: string;
  dir: string;
  name: string;
  /** The run's group in a study: its name without the -seed<N> suffix compare gives each seed. */
  group: string;
  seed: number | null;
  protocol: string | null;
  methods: string[];
  totalSteps: number | null;
  step: number;
  status: RunStatus;
  /** failed: the reason; running: the owner's pid; stopped: how to continue. */
  reason: string | null;
  elapsedS: number | null;
  etaS: number | null;
  evalSteps: number[];
  /** Evaluation grids under evals/ (step → file name), and whether samples.png exists. */
  grids: { step: number; file: string }[];
  samples: boolean;
  trace: boolean;
  traceJson: boolean;
  inputs: boolean;
  /** The first step-<n>.mmd (the Mermaid step diagram a traced run writes), or null. */
  stepDiagram: string | null;
  skipped: number;
}

const exists = (...p: string[]) => fs.existsSync(path.join(...p));

/** A run directory holds spec.yaml or metrics.jsonl. */
export function isRunDir(dir: string): boolean {
  return exists(dir, 'spec.yaml') || exists(dir, 'metrics.jsonl');
}

/** How far below a root runs are looked for: runs/<run> and runs/<study>/<run> (a `compare --out`), one more to spare. */
export const SEARCH_DEPTH = 3;

/**
 * The runs of each root: the root itself when it is a run, else the run directories below it, up
 * to SEARCH_DEPTH levels down (a run's own sub-directories, checkpoints/ and evals/, are not
 * searched; nor are dot-directories). So `serve runs/` finds runs/repa and runs/compare/repa-seed0.
 */
export function findRuns(roots: readonly string[]): { root: number; rel: string; dir: string }[] {
  const out: { root: number; rel: string; dir: string }[] = [];
  const walk = (root: number, dir: string, rel: string, depth: number) => {
    if (isRunDir(dir)) {
      out.push({ root, rel, dir });
      return;
    }
    if (depth >= SEARCH_DEPTH) return;
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    // `train --fresh` moves an old run aside to DIR.<time>: those are runs too, shown as such.
    for (const e of entries.sort((x, y) => x.name.localeCompare(y.name))) {
      if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules') walk(root, path.join(dir, e.name), rel ? `${rel}/${e.name}` : e.name, depth + 1);
    }
  };
  roots.forEach((r, i) => walk(i, r, '', 0));
  return out;
}

export function runId(root: number, rel: string): string {
  return `${root}/${rel || '.'}`;
}

interface SpecFacts { name: string | null; seed: number | null; protocol: string | null; methods: string[]; steps: number | null }

function specFacts(dir: string): SpecFacts {
  try {
    const s = parseYaml(fs.readFileSync(path.join(dir, 'spec.yaml'), 'utf8')) as Record<string, any>;
    const methods = Array.isArray(s?.methods) ? s.methods.map(String) : [];
    return {
      name: typeof s?.name === 'string' ? s.name : null,
      seed: typeof s?.seed === 'number' ? s.seed : null,
      protocol: typeof s?.protocol === 'string' ? s.protocol : methods.length ? methods.join('+') : null,
      methods,
      steps: typeof s?.train?.steps === 'number' ? s.train.steps : null,
    };
  } catch {
    return { name: null, seed: null, protocol: null, methods: [], steps: null };
  }
}

function readJson(file: string): any {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/** evals/step-000200.png → 200. */
export function gridsOf(dir: string): { step: number; file: string }[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(path.join(dir, EVALS_DIR));
  } catch {
    return [];
  }
  return names.flatMap((f) => {
    const m = /^step-(\d+)\.png$/.exec(f);
    return m ? [{ step: Number(m[1]), file: `${EVALS_DIR}/${f}` }] : [];
  }).sort((a, b) => a.step - b.step);
}

function stepDiagramOf(dir: string): string | null {
  try {
    const m = fs.readdirSync(dir).map((f) => /^step-(\d+)\.mmd$/.exec(f)).filter((x) => x !== null).sort((a, b) => Number(a[1]) - Number(b[1]));
    return m.length ? m[0][0] : null;
  } catch {
    return null;
  }
}

/** Whether the run's lock names a live process (on another host: assumed alive). */
function lockOwner(dir: string): { pid: number } | null {
  const o = readJson(path.join(dir, LOCK_FILE));
  if (!o || typeof o.pid !== 'number') return null;
  const host = typeof o.host === 'string' ? o.host : null;
  return host && host !== os.hostname() ? { pid: o.pid } : processAlive(o.pid) ? { pid: o.pid } : null;
}


/** Everything the runs list shows about one run, from its files and the metrics lines already read. */
export function describeRun(root: number, rel: string, dir: string, metrics: ParsedMetrics): RunInfo {
  const spec = specFacts(dir);
  const name = spec.name ?? (path.basename(path.resolve(dir)));
  const train = metrics.lines.filter((l) => !l.eval);
  const evals = metrics.lines.filter((l) => l.eval);
  const last = train.at(-1);
  // A reduce, not Math.max(...lines): a long run has more lines than a call takes arguments.
  const step = metrics.lines.reduce((m, l) => Math.max(m, l.step as number), 0);
  const wall = metrics.lines.reduce((m, l) => Math.max(m, typeof l.wall_s === 'number' ? l.wall_s : 0), 0);
  const failure = readJson(path.join(dir, FAILURE_FILE));
  const owner = lockOwner(dir);
  let status: RunStatus;
  let reason: string | null = null;
  if (owner) {
    status = 'running';
    reason = `pid ${owner.pid}`;
  } else if (failure) {
    status = 'failed';
    reason = typeof failure.reason === 'string' ? failure.reason : JSON.stringify(failure);
  } else if (spec.steps !== null && step >= spec.steps && exists(dir, 'checkpoint.safetensors')) {
    status = 'finished';
  } else {
    status = 'stopped';
    reason = exists(dir, 'checkpoint.safetensors') ? `at step ${step}; continue with: npx diffactor train --resume ${dir}` : `at step ${step}, no checkpoint`;
  }
  const itS = typeof last?.it_s === 'number' && last.it_s > 0 ? last.it_s : null;
  return {
    id: runId(root, rel), root, rel, dir, name,
    group: name.replace(/-seed\d+$/, ''),
    seed: spec.seed, protocol: spec.protocol, methods: spec.methods, totalSteps: spec.steps,
    step, status, reason,
    elapsedS: metrics.lines.length ? wall : null,
    etaS: status === 'running' && itS && spec.steps !== null ? Math.max(0, spec.steps - step) / itS : null,
    evalSteps: evals.map((l) => l.step as number),
    grids: gridsOf(dir),
    samples: exists(dir, 'samples.png'),
    trace: exists(dir, 'trace.jsonl'),
    traceJson: exists(dir, 'trace.json'),
    inputs: exists(dir, 'inputs.json'),
    stepDiagram: stepDiagramOf(dir),
    skipped: metrics.skipped,
  };
}
