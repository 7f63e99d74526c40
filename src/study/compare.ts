// `diffactor compare`: the reproduction study. Each spec is trained on actors for the same
// wall-clock budget and the same step count (whichever ends first), with ≥ 2 seeds, the Evaluator
// measuring the EMA teacher every `evalEvery` steps beside training; then report.ts writes
// results.md (under --docs) with the table, plots and sample grids. Runs go one after another; two
// compare processes started on one study share its runs (claims: see the loop below). Not here: the metrics (src/eval), the report's layout (report.ts).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.ts';
import path from 'node:path';
import { loadSpec } from '../spec/load.ts';
import { runActors, type ActorRunOptions } from '../run/actorRun.ts';
import { loadCheckpoint } from '../build/checkpoint.ts';
import type { RunSpec } from '../spec/schema.ts';
import { filesOf, runInputs, staleReasons, uncheckedFiles, writeRunInputs } from './runInputs.ts';
import { MIN_SEEDS } from './report.ts';
import { evaluateCheckpoint } from '../eval/checkpointEval.ts';
import { archiveRun, restoreRun } from './archive.ts';
import { writeProgress, type PlannedRun } from './progress.ts';
import { lockHolder, lockRunDir, RunDirLocked, type RunLock } from '../io/lock.ts';

/**
 * Written in a run's directory when the study finished it: with it, the run is reused from its records
 * (metrics.jsonl, samples.png, inputs.json) even when its checkpoints were removed.
 */
export const FINISHED_FILE = 'study-finished.json';

/** compare's claim on a run it is training, evaluating or archiving (another lane skips the run). */
export const CLAIM_FILE = '.claim';
/** How often a lane with nothing left to do looks at the runs other lanes are training. */
const LANE_POLL_MS = 30_000;

/** Sleep `ms`, or throw at once when `signal` aborts (Ctrl-C while waiting for another lane). */
function waitOrStop(signal: AbortSignal | undefined, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('compare: stopped while waiting for runs another compare process is training; run the same command again to continue'));
    const t = setTimeout(() => { signal?.removeEventListener('abort', stop); resolve(); }, ms);
    const stop = () => { clearTimeout(t); reject(new Error('compare: stopped while waiting for runs another compare process is training; run the same command again to continue')); };
    signal?.addEventListener('abort', stop, { once: true });
  });
}

export interface CompareOptions {
  specs: string[];
  budgetSeconds: number;
  seeds: number;
  /** Seeds of particular specs, by spec name (issue 15: 3 for the headline methods, 2 for the rest). */
  seedsFor?: Record<string, number>;
  /** Step count of every run (default: the smallest train.steps of the specs). */
  steps?: number;
  evalEvery: number;
  /** Generated images per evaluation. */
  evalSamples?: number;
  /** Equal-cost evaluation: model evaluations per sample for every method's sampler (sets eval.nfe). */
  evalNfe?: number;
  /**
   * One more evaluation of each run's final checkpoint, with more samples (FD from a few hundred is
   * biased and noisy) and its own guidance; the report's headline table and the claims then read it.
   * Stored per setting in the run's directory, so a reused run is measured once per setting.
   */
  final?: FinalEvalSettings & {
    /** Guidance scale of particular specs' final evaluation, by spec name (DiGIT samples unguided). */
    cfgFor?: Record<string, number>;
  };
  out: string;
  /**
   * Where finished runs' records are kept beyond this machine (archive.ts): restored into `out` when
   * missing there, and each run copied in once it is finished and evaluated.
   */
  archive?: string;
  data?: string;
  /**
   * `path=value` overrides of every spec's fields, or `name:path=value` of the spec named `name`
   * only (`--set`): one study config (model size, space, batch) over the shipped specs.
   */
  sets?: string[];
  /**
   * The spec name whose final FD is the steps-to-quality target (`--baseline`; default sit-baseline
   * when the study has it, else the first spec): a latent-space study names sit-latent.
   */
  baseline?: string;
  quiet?: boolean;
  /** How often a lane whose remaining runs are all claimed by other compare processes looks again (ms; default 30 s). */
  lanePollMs?: number;
  /** Stop the run in flight after its step, with a checkpoint (Ctrl-C); the next compare continues it. */
  signal?: AbortSignal;
  /**
   * A markdown page of every planned run and where it stands (progress.ts), rewritten as runs finish,
   * with the command that continues the study (`compare --study` writes `<docs>/progress.md`).
   */
  progress?: { file: string; command: string };
  /**
   * Runs the study's specs read but that are not runs of the study: a method's stage 1 (an
   * autoencoder, a pre-trained encoder) that a stage-2 spec names by its checkpoint. Each is trained
   * (or continued) once, at its own spec's length and seed, before the first run that reads it.
   */
  stages?: { spec: string; out: string }[];
  /** Plan the study and report where it stands (`progress`), training nothing (`compare --status`). */
  status?: boolean;
  /**
   * Spec names: this process takes only their runs (and the stages they read), then returns without
   * waiting for the rest (`compare --only rae,rae-vae`: a lane pointed at the runs one claim needs).
   * The study's plan, and so every run's seed and directory, stays the whole study's.
   */
  only?: string[];
  /** Called after every step of every run (tests: stop one mid-way). */
  onStep?: ActorRunOptions['onStep'];
}

export interface FinalEvalSettings { samples: number; cfg: number }

export interface RunRecord {
  /** The final evaluation (CompareOptions.final), when the study asked for one. */
  final?: { samples: number; cfg: number; step: number; metrics: Record<string, number> };
  method: string;
  protocol: string;
  seed: number;
  dir: string;
  steps: number;
  wallSeconds: number;
  losses: { step: number; loss: number }[];
  evals: { step: number; wall_s: number; metrics: Record<string, number> }[];
}

export interface Study {
  options: CompareOptions;
  runs: RunRecord[];
  specs: RunSpec[];
  /** Every planned run in training order, as it stood when planned (compare --status reads it). */
  plan?: PlannedRun[];
  /** Set when `only` limited the runs: `runs` holds those alone, so no report is written from it. */
  partial?: boolean;
}

export function parseBudget(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(s.trim());
  if (!m) throw new Error(`--budget '${s}': expected a duration like 30m, 90s or 1.5h`);
  return Number(m[1]) * ({ s: 1, m: 60, h: 3600 } as const)[(m[2] ?? 's') as 's' | 'm' | 'h'];
}

/** `name:path=value` → that spec's override; `path=value` → every spec's. */
export function parseStudySet(s: string): { spec: string | null; set: string } {
  const m = /^([A-Za-z0-9_-]+):([^=]+=.*)$/s.exec(s);
  return m ? { spec: m[1], set: m[2] } : { spec: null, set: s };
}

/** Step and training wall time of the run's last checkpoint, or null when it has none. */
function savedState(dir: string): { step: number; wallSeconds: number } | null {
  const file = path.join(dir, 'checkpoint.safetensors');
  if (!existsSync(file)) return null;
  const { step, wallSeconds } = loadCheckpoint(file).state;
  return { step, wallSeconds: wallSeconds ?? 0 };
}

/** A finished run's records from its directory (so a study can be re-reported without retraining). */
export function readRun(dir: string, method: string, protocol: string, seed: number): RunRecord {
  const lines = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const losses = lines.filter((l) => !l.eval).map((l) => ({ step: l.step, loss: l.loss }));
  const evals = lines.filter((l) => l.eval).map(({ step, wall_s, eval: _e, ...metrics }) => ({ step, wall_s, metrics })).sort((a, b) => a.step - b.step);
  const last = lines.filter((l) => !l.eval).at(-1);
  return { method, protocol, seed, dir, steps: last?.step ?? 0, wallSeconds: last?.wall_s ?? 0, losses, evals };
}

/** The file of a run's final evaluation at these settings. */
export const finalEvalFile = (dir: string, f: FinalEvalSettings): string => path.join(dir, `final-eval-${f.samples}-cfg${f.cfg}.json`);

/**
 * The final evaluation of the run in `dir` at settings `f`: read when measured before, else measured
 * on its checkpoint's EMA weights (`diffactor eval`'s Evaluation; the run's own eval section, with
 * eval.samples and eval.cfg from `f`) and saved beside it.
 */
export function finalEvaluation(dir: string, f: FinalEvalSettings, o: { data?: string; quiet?: boolean; tag?: string } = {}): NonNullable<RunRecord['final']> {
  const file = finalEvalFile(dir, f);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as NonNullable<RunRecord['final']>;
  const checkpoint = path.join(dir, 'checkpoint.safetensors');
  if (!existsSync(checkpoint)) throw new Error(`compare: the final evaluation (${f.samples} samples, cfg ${f.cfg}) of ${dir} needs its checkpoint ${checkpoint}, which is gone; restore it, or drop --final-samples`);
  if (!o.quiet) console.error(`${o.tag ?? 'compare'}: final evaluation of ${dir}: ${f.samples} samples, cfg ${f.cfg}`);
  const metrics = evaluateCheckpoint({ checkpoint, samples: f.samples, data: o.data, json: false, quiet: true, set: [`eval.cfg=${f.cfg}`] });
  const rec = { samples: f.samples, cfg: f.cfg, step: loadCheckpoint(checkpoint).state.step, metrics: { ...metrics } };
  writeFileAtomic(file, `${JSON.stringify(rec, null, 1)}\n`);
  return rec;
}

/** Where a stage stands: finished (its checkpoint reached its spec's steps), stopped at a step, or to train. */
export function stageState(st: { spec: string; out: string }): { name: string; steps: number; at: number | null } {
  const spec = loadSpec(st.spec);
  const state = savedState(st.out);
  return { name: spec.name, steps: spec.train.steps, at: state?.step ?? null };
}

/**
 * Train (or continue) the stages a run reads — those with a file of the spec inside their `out` —
 * whose checkpoint is missing or short of its spec's steps. Lazily, before the first run that needs
 * one: a study continued in another session spends its time on the runs it can already train first.
 */
async function trainStagesFor(spec: RunSpec, o: CompareOptions): Promise<void> {
  const files = filesOf(spec, o.data ?? null).map(([, f]) => path.resolve(f));
  for (const st of o.stages ?? []) {
    const dir = path.resolve(st.out) + path.sep;
    if (!files.some((f) => f.startsWith(dir))) continue;
    const { name, steps, at } = stageState(st);
    if (at !== null && at >= steps) continue;
    if (!o.quiet) console.error(`compare: stage ${name} → ${st.out}, ${steps} steps${at !== null ? `, continuing from its checkpoint at step ${at}` : ''} (${spec.name} reads it)`);
    await runActors({ ...(at !== null ? { resume: true } : { spec: loadSpec(st.spec) }), out: st.out, data: o.data, quiet: o.quiet, signal: o.signal });
  }
}

export async function compare(o: CompareOptions): Promise<Study> {
  if (!Number.isInteger(o.seeds) || o.seeds < MIN_SEEDS) throw new Error(`compare: --seeds ${o.seeds}: needs at least ${MIN_SEEDS} (a claim is decided only when every seed of one method beats every seed of the other)`);
  const sets = (o.sets ?? []).map(parseStudySet);
  const specs = o.specs.map((f) => {
    if (!existsSync(f)) throw new Error(`compare: spec file ${f} not found`);
    const name = loadSpec(f).name;
    return loadSpec(f, sets.filter((s) => s.spec === null || s.spec === name).map((s) => s.set));
  });
  for (const s of sets) {
    if (s.spec !== null && !specs.some((p) => p.name === s.spec)) throw new Error(`compare: --set ${s.spec}:${s.set}: no spec named '${s.spec}' (the specs are ${specs.map((p) => p.name).join(', ')})`);
  }
  // A stage is trained when a run reads a file inside its out: one that no spec reads would never be.
  const read = specs.flatMap((p) => filesOf(p, o.data ?? null).map(([, f]) => path.resolve(f)));
  for (const st of o.stages ?? []) {
    if (!existsSync(st.spec)) throw new Error(`compare: stage spec file ${st.spec} not found`);
    if (!read.some((f) => f.startsWith(path.resolve(st.out) + path.sep))) throw new Error(`compare: stage ${st.spec}: no spec of the study reads a file in its out ${st.out}; out must be the directory a spec's checkpoint path points into (e.g. runs/epg-pretrain for epg.init: ../runs/epg-pretrain/checkpoint.safetensors)`);
  }
  for (const name of o.only ?? []) {
    if (!specs.some((p) => p.name === name)) throw new Error(`compare: --only ${o.only!.join(',')}: no spec named '${name}' (the specs are ${specs.map((p) => p.name).join(', ')})`);
  }
  if (o.only !== undefined && o.only.length === 0) throw new Error('compare: --only needs at least one spec name, e.g. --only rae,rae-vae');
  if (o.baseline !== undefined && !specs.some((p) => p.name === o.baseline)) throw new Error(`compare: --baseline ${o.baseline}: no spec named '${o.baseline}' (the specs are ${specs.map((p) => p.name).join(', ')})`);
  const steps = o.steps ?? Math.min(...specs.map((s) => s.train.steps));
  mkdirSync(o.out, { recursive: true });
  // Plan every run first: a finished run made from other inputs stops the study before any training.
  for (const [name, n] of Object.entries(o.seedsFor ?? {})) {
    if (!specs.some((p) => p.name === name)) throw new Error(`compare: --seeds ${name}:${n}: no spec named '${name}' (the specs are ${specs.map((p) => p.name).join(', ')})`);
    if (!Number.isInteger(n) || n < MIN_SEEDS) throw new Error(`compare: --seeds ${name}:${n}: needs at least ${MIN_SEEDS}`);
  }
  const plan = specs.flatMap((base) => Array.from({ length: o.seedsFor?.[base.name] ?? o.seeds }, (_, k) => {
    const seed = base.seed + k;
    const spec: RunSpec = {
      ...base,
      seed,
      name: `${base.name}-seed${seed}`,
      // The spec's own checkpoint cadence: a study stopped mid-run (Ctrl-C, a lost session) resumes
      // from the last one instead of starting the run again.
      train: { ...base.train, steps, eval_every: o.evalEvery, checkpoint_every: Math.min(base.train.checkpoint_every, steps) },
      eval: { ...base.eval, ...(o.evalSamples && { samples: o.evalSamples }), ...(o.evalNfe && { nfe: o.evalNfe }) },
    };
    const dir = path.join(o.out, spec.name);
    if (o.archive && restoreRun(dir, o.archive, FINISHED_FILE) && !o.quiet) console.error(`compare: ${dir} restored from the archive ${o.archive}`);
    const inputs = runInputs(spec, o.data);
    // A run's records suffice to report it: a study kept without its checkpoints (they are large)
    // is still finished. A checkpoint short of the steps and the budget is a run to continue.
    const finished = existsSync(path.join(dir, FINISHED_FILE)), state = finished ? null : savedState(dir);
    const done = finished || (state !== null && (state.step >= steps || state.wallSeconds >= o.budgetSeconds));
    return { base, k, seed, spec, dir, inputs, done, resumeAt: done ? null : state?.step ?? null };
  }));
  for (const p of plan.filter((q) => q.done || q.resumeAt !== null)) {
    const stale = staleReasons(p.dir, p.inputs);
    if (stale.length) {
      throw new Error(`compare: ${p.dir} holds a ${p.done ? 'finished' : 'started'} run made from other inputs (${stale.slice(0, 5).join('; ')}${stale.length > 5 ? `; and ${stale.length - 5} more` : ''}); pass another --out or delete that directory to retrain it`);
    }
    const unchecked = uncheckedFiles(p.dir, p.inputs);
    if (unchecked.length && p.done && !o.quiet) console.error(`compare: ${p.dir}: its ${unchecked.join(', ')} file${unchecked.length > 1 ? 's are' : ' is'} not on this machine to compare; reusing its records as they are`);
  }
  const finalSettings = (name: string): FinalEvalSettings => ({ samples: o.final!.samples, cfg: o.final!.cfgFor?.[name] ?? o.final!.cfg });
  if (o.final) {
    if (!Number.isInteger(o.final.samples) || o.final.samples < 1) throw new Error(`compare: --final-samples ${o.final.samples}: expected a positive integer`);
    for (const [name, cfg] of [['', o.final.cfg] as const, ...Object.entries(o.final.cfgFor ?? {})]) {
      if (name && !specs.some((p) => p.name === name)) throw new Error(`compare: --final-cfg ${name}:${cfg}: no spec named '${name}' (the specs are ${specs.map((p) => p.name).join(', ')})`);
      if (!(cfg >= 1)) throw new Error(`compare: --final-cfg ${name ? `${name}:` : ''}${cfg}: expected a guidance scale ≥ 1 (1: unguided)`);
    }
  }
  const finished = new Map<string, RunRecord>();
  const finalFile = (p: (typeof plan)[number]) => finalEvalFile(p.dir, finalSettings(p.base.name));
  // Finished and, when the study has a final evaluation, measured: nothing left to do but read it.
  const complete = (p: (typeof plan)[number]) => existsSync(path.join(p.dir, FINISHED_FILE)) && (!o.final || existsSync(finalFile(p)));
  const record = (p: (typeof plan)[number]): RunRecord => {
    const run = readRun(p.dir, p.base.name, p.base.protocol, p.seed);
    if (o.final && existsSync(finalFile(p))) run.final = finalEvaluation(p.dir, finalSettings(p.base.name), { quiet: true });
    return run;
  };
  const planned = (): PlannedRun[] => [
    ...(o.stages ?? []).map((st) => {
      const { name, steps, at } = stageState(st);
      const busy = lockHolder(st.out)?.pid;
      return { name, done: at !== null && at >= steps, resumeAt: at, stage: { steps, at }, ...(busy !== undefined && busy !== process.pid && { busy }) };
    }),
    ...plan.map((p) => {
      const busy = lockHolder(p.dir, CLAIM_FILE)?.pid;
      return { name: p.spec.name, done: p.done || complete(p), resumeAt: savedState(p.dir)?.step ?? null, ...(busy !== undefined && busy !== process.pid && { busy }) };
    }),
  ];
  const progress = () => {
    if (!o.progress) return;
    // Runs another compare process (a second lane) finished since the last look.
    for (const p of plan) if (!finished.has(p.spec.name) && complete(p)) finished.set(p.spec.name, record(p));
    writeProgress(o.progress.file, planned(), finished, o.progress.command);
  };
  // A finished run's records are read before training, so the page shows them from the start.
  for (const p of plan.filter((q) => q.done)) {
    const run = readRun(p.dir, p.base.name, p.base.protocol, p.seed);
    if (o.final && existsSync(finalFile(p))) run.final = finalEvaluation(p.dir, finalSettings(p.base.name), { quiet: true });
    finished.set(p.spec.name, run);
  }
  progress();
  if (o.status) return { options: { ...o, steps }, runs: [...finished.values()], specs, plan: planned() };

  // Several compare processes may run one study at once (lanes: two trainings fill two cores better
  // than one). Each run is claimed (CLAIM_FILE, held through training, final evaluation and
  // archiving); a lane skips a run another live process holds, or whose stage another is training,
  // and comes back to it once everything else is done. A dead lane's claim is taken over.
  const runs: (RunRecord | undefined)[] = new Array(plan.length);
  const handle = async (i: number): Promise<boolean> => {
    const p = plan[i];
    const tag = `compare [${i + 1}/${plan.length}]`;
    if (complete(p)) {
      if (!o.quiet) console.error(`${tag}: ${p.dir} is done already (same spec and files); reusing it`);
      // A run finished before the study had an archive: copied in now (a finished copy is kept).
      if (o.archive && !existsSync(path.join(o.archive, path.basename(p.dir), FINISHED_FILE))) archiveRun(p.dir, o.archive);
      runs[i] = record(p);
      return true;
    }
    mkdirSync(p.dir, { recursive: true });
    let claim: RunLock;
    try {
      claim = lockRunDir(p.dir, CLAIM_FILE);
    } catch (e) {
      if (e instanceof RunDirLocked) return false;
      throw e;
    }
    try {
      const state = existsSync(path.join(p.dir, FINISHED_FILE)) ? null : savedState(p.dir);
      const trained = state === null ? existsSync(path.join(p.dir, FINISHED_FILE)) : state.step >= steps || state.wallSeconds >= o.budgetSeconds;
      if (trained) {
        if (!o.quiet) console.error(`${tag}: ${p.dir} is trained already (same spec and files); reusing it`);
      } else {
        const resume = state !== null;
        try {
          // A stage trained just now is one of this run's inputs: hash it as it is.
          if (o.stages?.length) { await trainStagesFor(p.spec, o); p.inputs = runInputs(p.spec, o.data); }
          if (!resume) writeRunInputs(p.dir, p.inputs);
          if (!o.quiet) console.error(`${tag}: ${p.spec.name} (${p.base.protocol}), ${steps} steps or ${o.budgetSeconds} s${resume ? `, continuing from its checkpoint at step ${state.step}` : ''}`);
          // Only the first seed's sample grid goes into the report; the others skip it (≈ 1 min each).
          await runActors({
            ...(resume ? { resume: true } : { spec: p.spec }),
            out: p.dir, data: o.data, budgetSeconds: o.budgetSeconds, quiet: o.quiet, samples: p.k === 0, signal: o.signal, onStep: o.onStep,
          });
        } catch (e) {
          // Its stage (or the run itself, outside compare) is being trained by another process.
          if (e instanceof RunDirLocked) {
            if (!o.quiet) console.error(`${tag}: ${p.spec.name} waits: ${e.dir} is in use by pid ${e.owner.pid}`);
            return false;
          }
          throw e;
        }
      }
      const run = readRun(p.dir, p.base.name, p.base.protocol, p.seed);
      if (!existsSync(path.join(p.dir, FINISHED_FILE))) writeFileAtomic(path.join(p.dir, FINISHED_FILE), `${JSON.stringify({ steps: run.steps, wall_s: run.wallSeconds, time: new Date().toISOString() })}\n`);
      if (o.final) run.final = finalEvaluation(p.dir, finalSettings(p.base.name), { data: o.data, quiet: o.quiet, tag });
      if (o.archive) archiveRun(p.dir, o.archive);
      runs[i] = run;
      return true;
    } finally {
      claim.release();
    }
  };
  let pending = [...plan.keys()].filter((i) => !o.only || o.only.includes(plan[i].base.name));
  for (let round = 0; pending.length; round++) {
    const left: number[] = [];
    for (const i of pending) {
      if (await handle(i)) {
        finished.set(plan[i].spec.name, runs[i]!);
        progress();
      } else left.push(i);
    }
    if (left.length && left.length === pending.length) {
      // Everything left is in another lane's hands: wait for it (the report needs every run).
      if (round === 0 && !o.quiet) console.error(`compare: waiting for ${left.length} run${left.length > 1 ? 's' : ''} that another compare process is training (${left.map((i) => plan[i].spec.name).join(', ')})`);
      await waitOrStop(o.signal, o.lanePollMs ?? LANE_POLL_MS);
      progress();
    }
    pending = left;
  }
  if (o.only) return { options: { ...o, steps }, runs: runs.filter((r): r is RunRecord => r !== undefined), specs, plan: planned(), partial: true };
  return { options: { ...o, steps }, runs: runs as RunRecord[], specs, plan: planned() };
}
