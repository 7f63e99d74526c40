// Each method's invariants (REPA (github.com/sihyun-yu/REPA)-§3 "Invariants") checked on real actor runs: tiny
// specs (test/actors/specs.ts) trained a few steps with every actor in this thread (placement
// 'local'), the message trace recorded (runActors' `trace`, read back from OUT/trace.jsonl), state
// fetched between steps through the actors' own `save` / `weights` / `features` messages, and the
// bodies the protocol machines send observed by wrapping ActorSystem.ask. Checked here:
//   - the EMA teacher gets no gradient and its weights are the float64 EMA of the student's history
//   - the frozen encoder never changes and gets no gradient
//   - SRA's teacher runs at a time never later than the student's, at a deeper block, on the same
//     x, ε and post-dropout labels
//   - logged totals are the specified weighting of the logged terms; λ scales the gradient the
//     projector sends to the student; the terms of step 1 do not depend on the weights
//   - gradient routing (who sends `backward` to whom, carrying which loss terms)
//   - golden normalised message traces of step 1 per protocol, and the order of the algorithm box.
// Not here: the pure loss properties (test/methods/*.property.test.ts), equality with the
// reference trainer (test/actors/equivalence.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runActors, type ActorRunOptions } from '../../src/run/actorRun.ts';
import { ActorSystem, CountingSink } from '../../src/actors/system.ts';
import type { AskOptions } from '../../src/actors/ref.ts';
import { buildEncoder } from '../../src/build/parts.ts';
import { modelConfigFor, openTrainData } from '../../src/build/setup.ts';
import { JSONL_FILE, readTraceJsonl } from '../../src/trace/jsonl.ts';
import { expectMessage, expectNoMessage, messagesOf, normalise } from '../../src/trace/assert.ts';
import type { TraceEvent } from '../../src/trace/event.ts';
import { Rng } from '../../src/tensor/rng.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import type { RunSpec } from '../../src/spec/schema.ts';
import type { StepLog } from '../../src/run/reference.ts';
import type { SiTConfig } from '../../src/models/config.ts';
import { ACTOR_PROTOCOLS, tinySpec } from '../actors/specs.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** A tiny spec of `protocol` trained `steps` steps; `train` and `over` replace fields of tinySpec's. */
function short(protocol: string, steps: number, train: Record<string, unknown> = {}, over: Record<string, unknown> = {}): RunSpec {
  return tinySpec(protocol, {
    train: { steps, batch_size: 8, lr: 1e-3, checkpoint_every: 1000, log_every: 1, warmup_steps: 3, schedule: 'cosine', ema_decay: 0.9, grad_clip: 0.5, ...train },
    ...over,
  });
}

interface Traced { events: TraceEvent[]; logs: StepLog[]; config: SiTConfig; spec: RunSpec }

/** Train on local actors with the trace on; the events come back from OUT/trace.jsonl. */
async function traced(spec: RunSpec, hooks: Pick<ActorRunOptions, 'onStarted' | 'onStep'> = {}): Promise<Traced> {
  const out = mkdtempSync(path.join(tmpdir(), `invariants-${spec.protocol}-`));
  dirs.push(out);
  const r = await runActors({ spec, out, quiet: true, samples: false, placement: 'local', trace: true, ...hooks });
  return { events: readTraceJsonl(path.join(out, JSONL_FILE)), logs: r.logs, config: r.config, spec: r.spec };
}

const requests = (events: readonly TraceEvent[], f: Parameters<typeof messagesOf>[1]) => messagesOf(events, { ...f, kind: 'request' });

/** No gradient message of any kind reaches `actor`: no `backward`, no `grad_of` label, no `grads.*` tensor. */
function expectNoGradientTo(events: readonly TraceEvent[], actor: string): void {
  expectNoMessage(events, { to: actor, type: 'backward' });
  const labelled = requests(events, { to: actor }).filter((e) => e.meta?.grad_of !== undefined || e.tensors.some((t) => /(^|\.)grads?(\.|$)/.test(t.name)));
  expect(labelled.map((e) => `${e.from}→${e.to} ${e.type} step ${e.step}`), `gradient messages to ${actor}`).toEqual([]);
}

/** The message types `actor` was sent. */
const typesTo = (events: readonly TraceEvent[], actor: string) => [...new Set(requests(events, { to: actor }).map((e) => e.type))].sort();

type Dict64 = Record<string, Float64Array>;
const f64 = (d: Record<string, Tensor>): Dict64 => Object.fromEntries(Object.entries(d).map(([k, t]) => [k, Float64Array.from(t.data)]));

/** max over all entries of |a − b| / (1 + |b|). */
function maxRelDiff(a: Dict64, b: Dict64): number {
  let m = 0;
  for (const [k, v] of Object.entries(b)) {
    const x = a[k];
    if (!x) throw new Error(`no tensor '${k}'`);
    for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(x[i] - v[i]) / (1 + Math.abs(v[i])));
  }
  return m;
}

// ------------------------------------------------------------------------------------------------

describe('EMA teacher', () => {
  const TOL = 2e-6; // a few float32 roundings of the in-place update per step

  it('gets no gradient and equals the float64 EMA of the student\'s parameter history (fast-check over decay and warm-up)', async () => {
    await fc.assert(fc.asyncProperty(
      fc.constantFrom(...ACTOR_PROTOCOLS), fc.double({ min: 0.3, max: 0.999, noNaN: true }), fc.boolean(),
      async (protocol, decay, warmup) => {
        const STEPS = 4;
        // A constant, larger LR so the student moves enough per step for the schedule to matter.
        // SRA's teacher as the spec writes it (its default scales the decay to the run: methods/sra).
        const literal = protocol === 'sra' ? { sra: { ...(tinySpec('sra').sra as object), teacher_ema: 'literal' } } : {};
        const spec = short(protocol, STEPS, { lr: 1e-2, schedule: 'constant', warmup_steps: 0, ema_decay: decay, ema_warmup: warmup }, literal);
        const students: Promise<Dict64>[] = [];
        const teachers: Promise<Dict64>[] = [];
        // Between steps: the student's parameters after its update, the teacher's after its EMA.
        // Asked from the hooks, so queued on each actor before any message of the next step.
        const snap = (sys: ActorSystem) => {
          students.push(sys.ask('student', 'save').then((r) => f64(r.model)));
          teachers.push(sys.ask('teacher', 'weights').then((r) => f64(r.ema)));
        };
        const run = await traced(spec, { onStarted: snap, onStep: (_l, sys) => snap(sys) });
        const S = await Promise.all(students), E = await Promise.all(teachers);
        expect(S.length).toBe(STEPS + 1);

        expectNoGradientTo(run.events, 'teacher');
        expect(typesTo(run.events, 'teacher')).toEqual(protocol === 'sra' ? ['ema', 'forward', 'init', 'release', 'weights'] : ['ema', 'init', 'release', 'weights']);

        // Before the first step the teacher is an exact copy of the student.
        expect(Object.keys(E[0]).sort()).toEqual(Object.keys(S[0]).sort());
        for (const k of Object.keys(S[0])) expect(E[0][k], k).toEqual(S[0][k]);

        // e_0 = θ_0; e_k = d_k e_{k−1} + (1 − d_k) θ_k, d_k = min(d, (1 + j)/(10 + j)) with j = k − 1 updates before (warm-up) or d.
        const replay = (warm: boolean): Dict64[] => {
          const out = [S[0]];
          for (let k = 1; k <= STEPS; k++) {
            const j = k - 1;
            const d = warm ? Math.min(decay, (1 + j) / (10 + j)) : decay;
            // REPA-E: the BN's running stats are averaged too, its batch counter is copied (REPA-E (github.com/End2End-Diffusion/REPA-E) (i)).
            out.push(Object.fromEntries(Object.entries(out[k - 1]).map(([n, e]) => [n, n === 'bn.num_batches_tracked' ? S[k][n] : e.map((v, i) => d * v + (1 - d) * S[k][n][i])])));
          }
          return out;
        };
        const want = replay(warmup);
        for (let k = 1; k <= STEPS; k++) expect(maxRelDiff(E[k], want[k]), `teacher after step ${k}`).toBeLessThanOrEqual(TOL);
        // The comparison is sharp: the student moved, the teacher lags it, and the other warm-up setting is far off.
        expect(maxRelDiff(S[STEPS], S[0])).toBeGreaterThan(1e3 * TOL);
        expect(maxRelDiff(E[STEPS], S[STEPS])).toBeGreaterThan(100 * TOL);
        expect(maxRelDiff(E[STEPS], replay(!warmup)[STEPS])).toBeGreaterThan(10 * TOL);
      },
    ), { seed: 71, numRuns: 6 });
  });

  it('the teacher and the encoder have no backward or step handler (nor the encoder a load): a gradient message to them is an error', async () => {
    const spec = short('repa', 1);
    const config = modelConfigFor(spec, openTrainData(spec));
    const sys = new ActorSystem(new CountingSink(), 'local');
    try {
      await sys.spawn([{ name: 'encoder', role: 'encoder', init: { spec, config, encoderDim: null } }]);
      const encoderDim = (await sys.ask('encoder', 'describe')).dim;
      await sys.spawn([{ name: 'teacher', role: 'teacher', init: { spec, config, encoderDim } }]);
      for (const [who, type] of [['teacher', 'backward'], ['teacher', 'step'], ['encoder', 'backward'], ['encoder', 'step'], ['encoder', 'load']]) {
        await expect(sys.ask(who, type, {}), `${who}.${type}`).rejects.toThrow(new RegExp(`no handler for message type '${type}'`));
      }
    } finally {
      await sys.shutdown();
    }
  });
});

describe('frozen encoder (REPA, REG)', () => {
  it.each(['repa', 'reg'])('%s: same features bit for bit before and after training, equal to a fresh encoder from the seed; no gradient reaches it', async (protocol) => {
    const STEPS = 3;
    const spec = short(protocol, STEPS, { lr: 1e-2 });
    const x = new Rng(123).normal([4, 3, 16, 16]); // images like the built-in set's (3 × 16 × 16)
    const probes: Promise<{ patch: Float32Array; cls: Float32Array; sum: number }>[] = [];
    const probe = (sys: ActorSystem) => probes.push(Promise.all([sys.ask('encoder', 'features', { x }), sys.ask('encoder', 'checksum')])
      .then(([f, sum]) => ({ patch: Float32Array.from(f.patch.data), cls: Float32Array.from(f.cls.data), sum })));
    const run = await traced(spec, { onStarted: probe, onStep: (l, sys) => { if (l.step === STEPS) probe(sys); } });
    const [before, after] = await Promise.all(probes);
    expect(after.sum).toBe(before.sum);
    expect(after.patch).toEqual(before.patch);
    expect(after.cls).toEqual(before.cls);
    // The student did train (so "unchanged" is not "nothing happened").
    expect(new Set(run.logs.map((l) => l.loss)).size).toBe(STEPS);

    const fresh = buildEncoder(spec, openTrainData(spec), run.config).features(x);
    expect(Float32Array.from(fresh.patch.data)).toEqual(before.patch);
    expect(Float32Array.from(fresh.cls.data)).toEqual(before.cls);

    expectNoGradientTo(run.events, 'encoder');
    expect(typesTo(run.events, 'encoder')).toEqual(['checksum', 'describe', 'features', 'init', 'release']);
  });
});

describe('SRA teacher time and block on a run', () => {
  interface Sent { to: string; step: number | null; t: Float64Array; x: Float32Array; eps: Float32Array; taps?: number[]; block?: number; labels?: Int32Array; reply?: Promise<Int32Array> }

  /** Wrap ActorSystem.ask to copy what the machine sends in student and teacher forwards. */
  function observeForwards(sys: ActorSystem, sent: Sent[]): void {
    const ask = sys.ask.bind(sys);
    sys.ask = ((name: string, type: string, body?: any, o?: AskOptions) => {
      const reply = ask(name, type, body, o);
      if (type === 'forward' && (name === 'student' || name === 'teacher')) {
        sent.push({
          to: name, step: o?.step ?? null, t: Float64Array.from(body.t), x: Float32Array.from(body.x.data), eps: Float32Array.from(body.eps.data),
          taps: body.taps, block: body.block, labels: body.labels && Int32Array.from(body.labels),
          reply: name === 'student' ? reply.then((r: { labels: Int32Array }) => Int32Array.from(r.labels)) : undefined,
        });
      }
      return reply;
    }) as ActorSystem['ask'];
  }

  it('t_T ≤ t_s per sample (by at most t_max), teacher block deeper, same x, ε and post-dropout labels; loss = diff + w·align (fast-check)', async () => {
    await fc.assert(fc.asyncProperty(
      fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1, noNaN: true })), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 }),
      async (tMax, studentBlock, gap) => {
        const teacherBlock = Math.min(3, studentBlock + gap); // depth 3
        const STEPS = 2;
        const spec = short('sra', STEPS, {}, { sra: { student_block: studentBlock, teacher_block: teacherBlock, t_max: tMax, loss: 'sml1', steps_per_epoch: 4 } });
        const sent: Sent[] = [];
        const run = await traced(spec, { onStarted: (sys) => observeForwards(sys, sent) });
        for (let step = 1; step <= STEPS; step++) {
          const s = sent.filter((m) => m.to === 'student' && m.step === step);
          const t = sent.filter((m) => m.to === 'teacher' && m.step === step);
          expect([s.length, t.length]).toEqual([1, 1]);
          const [st, te] = [s[0], t[0]];
          expect(st.taps).toEqual([studentBlock]);
          expect(te.block).toBe(teacherBlock);
          expect(te.block!).toBeGreaterThan(st.taps![0]);
          te.t.forEach((v, i) => {
            expect(v).toBeGreaterThanOrEqual(0);
            expect(v).toBeLessThanOrEqual(st.t[i]);
            expect(st.t[i] - v).toBeLessThanOrEqual(tMax + 1e-15);
          });
          if (tMax === 0) expect(te.t).toEqual(st.t);
          if (tMax > 0.01) expect(te.t.some((v, i) => v < st.t[i])).toBe(true);
          expect(te.x).toEqual(st.x);
          expect(te.eps).toEqual(st.eps);
          expect(te.labels).toEqual(await st.reply);
          // The teacher's hidden state has the shape of the student's tap it is aligned with.
          const hidden = (to: string, type: string, name: string) => expectMessage(run.events, { kind: 'reply', from: to, type, step })[0].tensors.find((x) => x.name === name)!.shape;
          expect(hidden('teacher', 'forward', 'hidden')).toEqual(hidden('student', 'forward', `hidden.${studentBlock}`));
          const l = run.logs[step - 1];
          expect(Math.abs(l.loss - Math.fround(l.terms.diff + l.terms.align_weight * l.terms.align))).toBeLessThanOrEqual(3e-7 * Math.abs(l.loss));
        }
        expectNoGradientTo(run.events, 'teacher');
      },
    ), { seed: 73, numRuns: 5 });
  });
});

describe('loss weights on a run (REPA λ; REG λ and β)', () => {
  const coeffs = (protocol: string, lambda: number, beta: number) => protocol === 'reg'
    ? { reg: { encoder_depth: 1, projector_dim: 24, proj_coeff: lambda, cls_coeff: beta } }
    : { repa: { encoder_depth: 1, projector_dim: 24, proj_coeff: lambda } };
  /** The statistics of the gradient the projector sent the student for hidden state 1. */
  const sentGrad = (r: Traced, step: number) => expectMessage(r.events, { kind: 'request', from: 'projector', to: 'student', type: 'backward', step }, 1)[0].tensors.find((t) => t.name === 'grads.1')!;

  it.each(['repa', 'reg'])('%s: loss = fround(diff + λ·proj (+ β·cls)) of the logged terms; step-1 terms independent of the weights; the gradient sent to the student scales with λ', async (protocol) => {
    const STEPS = 2;
    const base = await traced(short(protocol, STEPS, {}, coeffs(protocol, 0.5, 0.03)));
    const g0 = sentGrad(base, 1);
    expect(g0.maxAbs).toBeGreaterThan(0);
    await fc.assert(fc.asyncProperty(fc.oneof(fc.constant(0), fc.double({ min: 0.01, max: 2, noNaN: true })), fc.double({ min: 0, max: 1, noNaN: true }), async (lambda, beta) => {
      const run = await traced(short(protocol, STEPS, {}, coeffs(protocol, lambda, beta)));
      for (const l of run.logs) {
        const { diff, proj, cls } = l.terms;
        const want = Math.fround(diff + lambda * proj + (protocol === 'reg' ? beta * cls : 0));
        expect(Math.abs(l.loss - want), `step ${l.step}: ${l.loss} vs ${want}`).toBeLessThanOrEqual(3e-7 * Math.abs(want));
      }
      expect(run.logs[0].terms).toEqual(base.logs[0].terms);
      const g = sentGrad(run, 1);
      expect(g.shape).toEqual(g0.shape);
      expect(Math.abs(g.maxAbs - (lambda / 0.5) * g0.maxAbs)).toBeLessThanOrEqual(1e-5 * g0.maxAbs * Math.max(1, lambda / 0.5));
      expect(Math.abs(g.std - (lambda / 0.5) * g0.std)).toBeLessThanOrEqual(1e-5 * g0.std * Math.max(1, lambda / 0.5));
    }), { seed: protocol === 'reg' ? 75 : 74, numRuns: 4 });
  });
});

// ------------------------------------------------------------------------------------------------
// One traced two-step run per protocol, shared by the routing and golden-trace tests.

const runs = new Map<string, Traced>();
beforeAll(async () => {
  for (const p of ACTOR_PROTOCOLS) runs.set(p, await traced(short(p, 2)));
});
const eventsOf = (p: string) => runs.get(p)!.events;

describe('gradient routing', () => {
  const gradOf = (e: TraceEvent) => (e.meta?.grad_of as string[] | undefined) ?? [];

  it.each([
    ['repa', ['diff', 'proj']], ['reg', ['diff', 'cls', 'proj']], ['sra', ['diff', 'align']],
  ] as const)('%s: the student\'s backward comes from the projector with its gradient for the tapped state; nothing else gets a gradient', (protocol, terms) => {
    const ev = eventsOf(protocol);
    for (const step of [1, 2]) {
      const [bw] = expectMessage(ev, { kind: 'request', to: 'student', type: 'backward', step }, 1);
      expect(bw.from).toBe('projector');
      expect(gradOf(bw)).toEqual(terms);
      const [align] = expectMessage(ev, { kind: 'request', from: 'student', to: 'projector', type: 'align', step }, 1);
      const [aligned] = expectMessage(ev, { kind: 'reply', from: 'projector', type: 'align', step }, 1);
      const grad = aligned.tensors.find((t) => t.name === 'grad')!;
      // The tensor the student gets is the one the projector computed (same statistics), for the hidden state it sent.
      expect(bw.tensors.map((t) => t.name)).toEqual(['grads.1']);
      expect(bw.tensors[0]).toEqual({ ...grad, name: 'grads.1' });
      expect(grad.shape).toEqual(align.tensors.find((t) => t.name === 'hidden')!.shape);
      expect(grad.maxAbs).toBeGreaterThan(0);
    }
    for (const a of ['data', 'teacher', 'encoder']) expectNoGradientTo(ev, a);
    // The projector makes its own gradients inside `align`; it is never sent one.
    expect(typesTo(ev, 'projector')).toEqual(['align', 'init', 'release', 'save', 'step']); // save: the final checkpoint
  });

  it.each([['sit-baseline', ['diff']], ['dit-baseline', ['mse', 'vb']]] as const)('%s: no projector or encoder exists; the backward carries only the student\'s own loss', (protocol, terms) => {
    const ev = eventsOf(protocol);
    expect(ev.filter((e) => ['projector', 'encoder'].includes(e.from) || ['projector', 'encoder'].includes(e.to))).toEqual([]);
    for (const step of [1, 2]) {
      const [bw] = expectMessage(ev, { kind: 'request', to: 'student', type: 'backward', step }, 1);
      expect(bw.from).toBe('coordinator');
      expect(gradOf(bw)).toEqual(terms);
      expect(bw.tensors).toEqual([]);
    }
    for (const a of ['data', 'teacher']) expectNoGradientTo(ev, a);
  });
});

describe('golden step-1 traces', () => {
  /** Step 1's requests as `from → to: type`, in the canonical order (parallel states may interleave either way). */
  const golden = (p: string) => {
    const msgs = normalise(eventsOf(p).filter((e) => e.step === 1), { order: 'canonical' });
    expect(new Set(msgs.map((m) => m.step))).toEqual(new Set([1]));
    return msgs.map((m) => `${m.from} → ${m.to}: ${m.type}`);
  };

  /** The requests of step 1 in time order follow the method's algorithm box (each `to.type` after the previous). */
  function expectOrder(p: string, chain: string[][]): void {
    const seq = normalise(eventsOf(p).filter((e) => e.step === 1)).map((m) => `${m.to}.${m.type}`);
    const at = (k: string) => { const i = seq.indexOf(k); expect(i, `${k} in ${seq.join(', ')}`).toBeGreaterThanOrEqual(0); return i; };
    for (let i = 1; i < chain.length; i++) {
      for (const a of chain[i - 1]) for (const b of chain[i]) expect(at(a), `${a} before ${b}`).toBeLessThan(at(b));
    }
    // release ends the step, after everything else
    const firstRelease = seq.findIndex((k) => k.endsWith('.release'));
    expect(seq.slice(firstRelease).every((k) => k.endsWith('.release'))).toBe(true);
  }

  it('sit-baseline', () => {
    expect(golden('sit-baseline')).toMatchInlineSnapshot(`
      [
        "coordinator → data: next",
        "coordinator → data: release",
        "coordinator → student: backward",
        "coordinator → student: release",
        "coordinator → student: step",
        "coordinator → teacher: release",
        "data → student: forward",
        "student → teacher: ema",
      ]
    `);
    expectOrder('sit-baseline', [['data.next'], ['student.forward'], ['student.backward'], ['student.step'], ['teacher.ema']]);
  });

  it('dit-baseline', () => {
    expect(golden('dit-baseline')).toMatchInlineSnapshot(`
      [
        "coordinator → data: next",
        "coordinator → data: release",
        "coordinator → student: backward",
        "coordinator → student: release",
        "coordinator → student: step",
        "coordinator → teacher: release",
        "data → student: forward",
        "student → teacher: ema",
      ]
    `);
    expectOrder('dit-baseline', [['data.next'], ['student.forward'], ['student.backward'], ['student.step'], ['teacher.ema']]);
  });

  it('repa', () => {
    expect(golden('repa')).toMatchInlineSnapshot(`
      [
        "coordinator → data: next",
        "coordinator → data: release",
        "coordinator → encoder: release",
        "coordinator → projector: release",
        "coordinator → projector: step",
        "coordinator → student: release",
        "coordinator → student: step",
        "coordinator → teacher: release",
        "data → encoder: features",
        "data → student: forward",
        "projector → student: backward",
        "student → projector: align",
        "student → teacher: ema",
      ]
    `);
    expectOrder('repa', [['data.next'], ['encoder.features', 'student.forward'], ['projector.align'], ['student.backward'], ['student.step', 'projector.step'], ['teacher.ema']]);
  });

  it('sra', () => {
    expect(golden('sra')).toMatchInlineSnapshot(`
      [
        "coordinator → data: next",
        "coordinator → data: release",
        "coordinator → projector: release",
        "coordinator → projector: step",
        "coordinator → student: release",
        "coordinator → student: step",
        "coordinator → teacher: release",
        "data → student: forward",
        "projector → student: backward",
        "student → projector: align",
        "student → teacher: ema",
        "student → teacher: forward",
      ]
    `);
    expectOrder('sra', [['data.next'], ['student.forward'], ['teacher.forward'], ['projector.align'], ['student.backward'], ['student.step', 'projector.step'], ['teacher.ema']]);
  });

  it('reg', () => {
    expect(golden('reg')).toMatchInlineSnapshot(`
      [
        "coordinator → data: next",
        "coordinator → data: release",
        "coordinator → encoder: release",
        "coordinator → projector: release",
        "coordinator → projector: step",
        "coordinator → student: release",
        "coordinator → student: step",
        "coordinator → teacher: release",
        "data → encoder: features",
        "encoder → student: forward",
        "projector → student: backward",
        "student → projector: align",
        "student → teacher: ema",
      ]
    `);
    expectOrder('reg', [['data.next'], ['encoder.features'], ['student.forward'], ['projector.align'], ['student.backward'], ['student.step', 'projector.step'], ['teacher.ema']]);
  });
});
