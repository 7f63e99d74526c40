// A whole training run on actors: the run machine (src/protocols/runMachine.ts) decides, this file
// provides what it invokes — start the actors, save and load checkpoints (the reference trainer's
// format, so `--resume`, `sample` and PyTorch work on either), recover from a dead actor, finish
// with the EMA sample grid drawn by a pool — plus the trace recorders (`--trace` → DIR/trace.jsonl,
// trace.json, step-1.mmd). The run directory, checkpoint checks and the grid file are runDir.ts,
// metrics.jsonl and the bar runLog.ts, shared with runTraining (run.ts): same files and numbers.
import path from 'node:path';
import { existsSync } from 'node:fs';
import { createActor, fromPromise, waitFor } from 'xstate';
import { ActorSystem, type ActorSpec, type Placement } from '../actors/system.ts';
import type { TraceSink } from '../actors/ref.ts';
import { CountingSink } from '../actors/system.ts';
import { Rng } from '../tensor/rng.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { runContext, type RunContext, type StepFailure } from '../protocols/context.ts';
import { protocolFor, runMachine } from '../protocols/index.ts';
import { RunInterrupted, openRun, recordFailure, samplesGridLabels, saveCheckedCheckpoint, writeEvalGrid, writeSamplesGrid, type OpenedRun, type RunOptions } from './runDir.ts';
import { RunLog, hasEvaluation } from './runLog.ts';
import { expectedWork } from './estimate.ts';
import { Retention } from './retention.ts';
import { loadCheckpoint, type Checkpoint } from '../build/checkpoint.ts';
import { checkSpecConsistency, modelConfigFor, vaeConfigFor } from '../build/setup.ts';
import { latentSpaceOf } from '../build/latentSpace.ts';
import { backboneHook, jointVae, ownDrawLabel, samplingWeights } from '../build/parts.ts';
import { checkFitsMemory } from '../build/memory.ts';
import { vaeFactor, type VAEConfig } from '../models/vae.ts';
import { SamplePool, sampleGrid } from '../actors/samplePool.ts';
import { checkResumeProtocol, protocolOf, writeProtocolRecord, type ProtocolSource } from '../protocols/module.ts';
import { progressBar } from '../progress.ts';
import { TraceBus } from '../trace/bus.ts';
import { recordTrace } from '../trace/record.ts';
import type { SiTConfig } from '../models/config.ts';
import type { RunSpec } from '../spec/schema.ts';
import type { StepLog } from './reference.ts';

export interface ActorRunOptions extends RunOptions {
  /** Record the message trace into OUT (trace.jsonl, trace.json, step-<n>.mmd). */
  trace?: boolean;
  /** Worker threads (default) or all actors in this thread (tests, debugging). */
  placement?: Placement;
  /** Called once the actors run (tests: kill one mid-run). */
  onStarted?: (sys: ActorSystem) => void;
  onStep?: (log: StepLog, sys: ActorSystem) => void;
  maxRestarts?: number;
  /** Each failure the run machine sees (before it recovers or stops); default: one line on stderr. */
  onFailure?: (f: StepFailure & { step: number }) => void;
  /**
   * Stop (with the usual final checkpoint, evaluations and samples) once training has used this
   * much wall time, even before train.steps: `diffactor compare`'s equal budget.
   */
  budgetSeconds?: number;
  /** A protocol composed in code, or a function of the spec making one (default: the spec's methods composed, protocols/compose.ts). */
  protocol?: ProtocolSource;
  /** The module file `protocol` was loaded from, recorded so that `--resume` can load it again. */
  protocolModule?: string;
}

export interface ActorRunResult {
  out: string;
  logs: StepLog[];
  /** Evaluations the evaluator reported (step, metrics). */
  evals: { step: number; wall_s: number; metrics: Record<string, number> }[];
  restarts: number;
  config: SiTConfig;
  spec: RunSpec;
}

/** A run stopped for a reason the run machine cannot recover from (NaN, an actor's error). */
export class RunFailure extends Error {
  constructor(readonly step: number, readonly failure: StepFailure) {
    super(`${failure.kind === 'nonfinite' ? 'training diverged' : 'run failed'} at step ${step} in ${failure.where}: ${failure.error.message}; the run stopped and no checkpoint was written over`);
    this.name = 'RunFailure';
  }
}


const split = (m: Map<string, Tensor>, pred: (k: string) => boolean) => Object.fromEntries([...m].filter(([k]) => pred(k)));

export async function runActors(o: ActorRunOptions): Promise<ActorRunResult> {
  const { spec, resumeFrom, files, lock } = openRun(o, 'runActors');
  try {
    return await trainOnActors(o, spec, resumeFrom, files);
  } catch (e) {
    if (!(e instanceof RunInterrupted)) recordFailure(o.out, e as Error);
    throw e;
  } finally {
    lock.release();
  }
}

async function trainOnActors(o: ActorRunOptions, spec: OpenedRun['spec'], resumeFrom: OpenedRun['resumeFrom'], files: OpenedRun['files']): Promise<ActorRunResult> {
  const ckptFile = files.checkpoint;
  const protocol = o.protocol ? protocolOf(o.protocol, spec) : protocolFor(spec);
  // A run continues with the protocol that trained it (protocols/module.ts).
  if (o.resume) checkResumeProtocol(o.out, protocol);
  else writeProtocolRecord(o.out, { name: protocol.name, module: o.protocolModule ?? null });
  const heads = protocol.actors.filter((a) => a.role === 'projector').map((a) => a.name);

  const bus = o.trace ? new TraceBus({ detailed: true }) : null;
  const sink: TraceSink = bus ?? new CountingSink();
  // trace.jsonl, trace.json (Perfetto) and step-<n>.mmd beside the checkpoint: `diffactor trace OUT`.
  const recorder = bus ? recordTrace(bus, o.out, { step: 1 }) : null;

  const total = spec.train.steps;
  const log = new RunLog(files.metrics, spec.train);
  const evals: ActorRunResult['evals'] = [];
  // checkpoints/step-<N> and best (retention.ts); the evaluator runs when eval_every falls inside the run.
  const keep = new Retention(o.out, spec, resumeFrom?.state.step ?? 0, spec.train.eval_every > 0 && spec.train.eval_every <= total, (l) => { if (!o.quiet) console.error(l); });
  const pendingEvals: Promise<void>[] = [];
  let sys: ActorSystem | null = null;
  let run: RunContext | null = null;
  let config: SiTConfig | null = null;
  let specs: ActorSpec[] = [];
  let latentFactor = 1;
  let wallSeconds = resumeFrom?.state.wallSeconds ?? 0;
  let stepStart = performance.now();

  // ------------------------------------------------------------ state in and out of the actors
  const has = (name: string) => sys!.has(name);

  async function gather(step: number): Promise<Checkpoint> {
    const [st, teacher, loader, vae, ...hs] = await Promise.all([
      sys!.ask('student', 'save'),
      sys!.ask('teacher', 'weights'),
      sys!.ask('data', 'state'),
      has('vae') ? sys!.ask('vae', 'save') : null,
      ...heads.map((h) => sys!.ask(h, 'save')),
    ]);
    const opt = new Map<string, Tensor>(Object.entries(st.opt.tensors as Record<string, Tensor>));
    const proj = new Map<string, Tensor>();
    for (const h of hs) {
      for (const [k, t] of Object.entries(h.proj as Record<string, Tensor>)) proj.set(k, t);
      for (const [k, t] of Object.entries(h.opt.tensors as Record<string, Tensor>)) opt.set(k, t);
    }
    const rng: Record<string, ReturnType<Rng['state']>> = Object.fromEntries(Object.entries(run!.rngs).map(([k, r]) => [k, r.state()]));
    rng.dropout = st.rng.dropout;
    if (vae) Object.assign(rng, vae.rng);
    return {
      config: config!, spec,
      state: { step, rng, loader, optStep: st.opt.step, wallSeconds, ...(vae && { vaeOptStep: vae.opt.step }), ...(vae?.disc && { discOptStep: vae.disc.opt.step }) },
      model: new Map(Object.entries(st.model)), ema: new Map(Object.entries(teacher.ema)), proj, opt,
      ...(vae && { vae: new Map(Object.entries(vae.vae as Record<string, Tensor>)), vaeOpt: new Map(Object.entries(vae.opt.tensors as Record<string, Tensor>)) }),
      // The discriminator of the VAE's loss (REPA-E's PatchGAN) lives in the VAE actor.
      ...(vae?.disc && { disc: new Map(Object.entries(vae.disc.weights as Record<string, Tensor>)), discOpt: new Map(Object.entries(vae.disc.opt.tensors as Record<string, Tensor>)) }),
    };
  }

  async function restore(c: Checkpoint): Promise<number> {
    await Promise.all([
      sys!.ask('student', 'load', { model: Object.fromEntries(c.model), opt: { step: c.state.optStep, tensors: split(c.opt, (k) => !k.startsWith('proj.')) }, rng: { dropout: c.state.rng.dropout } }),
      ...heads.map((h) => sys!.ask(h, 'load', { proj: Object.fromEntries(c.proj), opt: { step: c.state.optStep, tensors: split(c.opt, (k) => k.startsWith('proj.')) } })),
      sys!.ask('teacher', 'load', { ema: Object.fromEntries(c.ema) }),
      sys!.ask('data', 'restore', { state: c.state.loader }),
      has('vae') ? restoreVae(c) : null,
    ]);
    for (const k of Object.keys(run!.rngs)) {
      const s = c.state.rng[k];
      if (!s) throw new Error(`checkpoint: no RNG state for stream '${k}'`);
      run!.rngs[k] = Rng.fromState(s);
    }
    wallSeconds = c.state.wallSeconds ?? 0;
    return c.state.step;
  }

  function restoreVae(c: Checkpoint) {
    const stream = jointVae(spec)!.vae.stream;
    if (!c.vae?.size || c.state.vaeOptStep === undefined || !c.state.rng[stream]) {
      throw new Error(`checkpoint: ${spec.protocol} needs 'vae.' tensors, the VAE optimiser's step and the '${stream}' RNG state`);
    }
    // The discriminator of the VAE's loss, when the checkpoint has one; the actor refuses a mismatch (build/checkpoint.ts checkDiscState).
    const disc = c.disc?.size ? { weights: Object.fromEntries(c.disc), opt: { step: c.state.discOptStep, tensors: Object.fromEntries(c.discOpt ?? []) } } : null;
    return sys!.ask('vae', 'load', { vae: Object.fromEntries(c.vae), opt: { step: c.state.vaeOptStep, tensors: Object.fromEntries(c.vaeOpt ?? []) }, rng: { [stream]: c.state.rng[stream] }, disc });
  }

  /** The teacher starts as an exact copy of the student (DiT's update_ema(decay=0)). */
  async function syncTeacher(): Promise<void> {
    const p = await sys!.ask('student', 'params', {}, { step: 0 });
    await sys!.ask('teacher', 'ema', { params: p.params, decay: 'copy' }, { step: 0, from: 'student' });
    await sys!.release(0);
  }

  async function save(step: number): Promise<void> {
    saveCheckedCheckpoint(ckptFile, await gather(step), (name) => new Error(`parameter '${name}' is not finite at step ${step}; ${ckptFile} was not overwritten`));
    keep.saved(step, log.logs);
  }

  /** Stopped on request before the last step. */
  const interrupted = (step: number) => !!o.signal?.aborted && step < total;

  // ------------------------------------------------------------ what the run machine invokes
  async function start() {
    sys = new ActorSystem(sink, o.placement ?? 'worker');
    const space = latentSpaceOf(spec);
    // The Data actor may encode the whole training set before it answers (build/latentCache.ts).
    if (space && !spec.data.hflip && !o.quiet) console.error(`latent space ${path.basename(space.file)}: each training image is encoded once and kept for the run (a run of at least an epoch encodes them all before its first step)`);
    await sys.spawn([{ name: 'data', role: 'data', init: { spec, data: o.data } }]);
    const info = await sys.ask('data', 'describe');
    const vaeConfig: VAEConfig | undefined = vaeConfigFor(spec, info);
    latentFactor = vaeConfig ? vaeFactor(vaeConfig) : latentSpaceOf(spec)?.factor ?? 1;
    config = modelConfigFor(spec, info, vaeConfig);
    checkSpecConsistency(spec, config.depth);
    checkFitsMemory(spec, config); // before any model is built
    const base = { spec, config, data: o.data, vaeConfig };
    let encoderDim: number | null = null;
    const encoders = protocol.actors.filter((a) => a.role === 'encoder');
    if (encoders.length) {
      await sys.spawn(encoders.map((a) => ({ name: a.name, role: a.role, init: { ...base, encoderDim: null, ...a.init } })));
      encoderDim = (await sys.ask(encoders[0].name, 'describe')).dim;
    }
    const init = { ...base, encoderDim };
    specs = [
      { name: 'student', role: 'student', init },
      { name: 'teacher', role: 'teacher', init },
      ...protocol.actors.filter((a) => a.role !== 'encoder').map((a) => ({ name: a.name, role: a.role, init: { ...init, ...a.init } })),
      ...(spec.train.eval_every > 0 && spec.train.eval_every <= total ? [{ name: 'evaluator', role: 'evaluator', init }] : []),
    ];
    await sys.spawn(specs);
    run = runContext(spec, config, info.count, encoderDim);
    const step = resumeFrom ? await restore(resumeFrom) : (await syncTeacher(), 0);
    // An evaluation runs beside the steps after it, so a run stopped then (Ctrl-C, a lost session,
    // a kill) saved the checkpoint of that step without its metrics: take them now, from the same
    // restored weights, or the study's tables would lack that step.
    if (resumeFrom && step > 0 && !hasEvaluation(files.metrics, step)) evaluate(step);
    log.startBar(`train ${spec.protocol} on actors`, step, o.quiet, wallSeconds, expectedWork(spec, config.numClasses, o.samples));
    o.onStarted?.(sys);
    stepStart = performance.now();
    return { sys, run, step };
  }

  function logStep(l: StepLog): void {
    const now = performance.now();
    wallSeconds += (now - stepStart) / 1000;
    stepStart = now;
    log.step(l, wallSeconds);
    o.onStep?.(l, sys!);
  }

  function evaluate(step: number): void {
    if (!(spec.train.eval_every > 0 && step % spec.train.eval_every === 0) || !has('evaluator')) return;
    // Beside training: the teacher sends copies of its weights between two steps, the evaluator
    // works on them while the next steps run; the result lands in metrics.jsonl when it is ready.
    const wall = wallSeconds;
    pendingEvals.push((async () => {
      const [w, v] = await Promise.all([sys!.ask('teacher', 'weights'), has('vae') ? sys!.ask('vae', 'save') : null]);
      const metrics = await sys!.ask('evaluator', 'evaluate', { ema: w.ema, ...(v && { vae: v.vae }), step }, { from: 'teacher' });
      // The same weights' sample grid, for `diffactor serve`'s step slider (evals/step-<N>.png).
      const g = await sys!.ask('evaluator', 'grid', { step });
      writeEvalGrid(o.out, step, g);
      evals.push({ step, wall_s: wall, metrics });
      log.evaluation(step, wall, metrics);
      keep.evaluated(step, metrics);
    })());
  }

  async function recover({ failure }: { failure: StepFailure & { step: number } }): Promise<{ step: number; run?: RunContext }> {
    const s = sys!;
    s.abandonAll();
    for (const [name, ref] of s.refs) {
      if (ref.failed) await s.restart(name);
      else await ref.ask('release', { step: failure.step }, { step: failure.step }).catch(() => {});
    }
    await Promise.allSettled(pendingEvals);
    if (existsSync(ckptFile)) {
      const c = loadCheckpoint(ckptFile);
      const step = await restore(c);
      log.truncate(step, wallSeconds);
      return { step };
    }
    // No checkpoint yet: every actor starts over from its seed.
    for (const name of [...s.refs.keys()]) await s.restart(name);
    run = runContext(spec, config!, (await s.ask('data', 'describe')).count, run!.encoderDim);
    await syncTeacher();
    log.clear();
    wallSeconds = 0;
    return { step: 0, run: run! };
  }

  async function finish({ step }: { step: number }): Promise<void> {
    log.stopBar();
    await save(step);
    if (interrupted(step)) return; // no grid, no waiting for evaluations: the run resumes from here
    await Promise.all(pendingEvals);
    if (o.samples !== false) {
      const s = spec.sample;
      const labels = samplesGridLabels(config!.numClasses, s.per_class);
      // The grid is stateless fan-out: a piscina pool samples chunks of it from copies of the EMA
      // weights (bit-identical to drawSamples in one thread, src/actors/samplePool.ts).
      const ema = new Map(Object.entries((await sys!.ask('teacher', 'weights')).ema as Record<string, Tensor>));
      // A backbone may sample as a plain SiT of part of its weights (REPA-E's skips its BN).
      const weights = samplingWeights(spec, ema);
      const pool = new SamplePool({ threads: 2 });
      const sbar = o.quiet ? null : progressBar(labels.length, `sample (${ownDrawLabel(spec) ?? `${s.sampler}, ${s.steps} steps`})`, 1);
      let images: Float32Array, channels = config!.inChannels;
      try {
        let done = 0;
        images = await sampleGrid(pool, {
          config: config!, weights, sampleSpec: s, seed: spec.seed, labels, spec: weights.size === ema.size && backboneHook(spec) ? spec : undefined,
          onProgress: (d, n) => { done = Math.round((d / n) * labels.length); sbar?.update(done, {}); },
        });
      } finally {
        sbar?.stop();
        await pool.close();
      }
      if (has('vae')) {
        // The jointly trained VAE decodes the latents with the EMA teacher's weights (its BN buffers).
        const d = await sys!.ask('vae', 'decode', { latents: images, n: labels.length, side: config!.inputSize, ema: Object.fromEntries(ema) }, { from: 'teacher' });
        images = d.images;
        channels = d.channels;
      } else {
        // A frozen latent space decodes by itself: its file is its whole state.
        const space = latentSpaceOf(spec);
        if (space) ({ images, channels } = { images: space.decode(images, labels.length, config!.inputSize), channels: space.imageChannels });
      }
      const side = config!.inputSize * latentFactor;
      writeSamplesGrid(o.out, images, labels, channels, side, s.per_class, { spec, dataset: o.data, quiet: o.quiet });
    }
  }

  const actor = createActor(runMachine.provide({
    actors: {
      start: fromPromise(start),
      step: protocol.step as any,
      checkpoint: fromPromise(({ input }) => save(input.step)),
      recover: fromPromise(({ input }) => recover(input)),
      finish: fromPromise(({ input }) => finish(input)),
    },
    guards: {
      finished: ({ context: c }) => c.step >= c.total || (o.budgetSeconds !== undefined && wallSeconds >= o.budgetSeconds) || !!o.signal?.aborted,
    },
    actions: {
      logStep: (_, log) => logStep(log),
      evaluate: (_, step) => evaluate(step),
      reportFailure: (_, f) => {
        if (o.onFailure) o.onFailure(f);
        else if (f.kind === 'actor') console.error(`\nsupervisor: ${f.error.message}; restarting from ${existsSync(ckptFile) ? `the checkpoint in ${ckptFile}` : 'the start'}`);
      },
    },
  }), { input: { total, checkpointEvery: spec.train.checkpoint_every, evalEvery: spec.train.eval_every, maxRestarts: o.maxRestarts ?? 3 } });
  try {
    actor.start();
    const final = await waitFor(actor, (s) => s.status === 'done', { timeout: Infinity });
    const c = final.context;
    if (final.value === 'failed') throw new RunFailure(c.failure?.step ?? c.step, c.failure!);
    if (interrupted(c.step)) throw new RunInterrupted(c.step, o.out);
    return { out: o.out, logs: log.logs, evals, restarts: c.restarts, config: config!, spec };
  } finally {
    log.stopBar();
    actor.stop();
    // An interrupted run does not wait for evaluations in flight: shutting the actors down ends them.
    if (!o.signal?.aborted) await Promise.allSettled(pendingEvals);
    await (sys as ActorSystem | null)?.shutdown();
    bus?.complete();
    await recorder?.close();
  }
}
