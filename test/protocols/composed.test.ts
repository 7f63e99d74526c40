// Methods composed in a spec (`methods: [repa, sra]`, src/protocols/compose.ts): first the
// composed step machine alone against a fake actor system (no threads, no models: which messages,
// in which order, with which gradients), then whole runs on actors — it trains on either
// placement, both heads learn, the logged loss is its terms composed, a checkpoint resumes bit for
// bit, and the gradient routing is checked against the single methods: at w = 0 it is plain REPA,
// at λ = 0 plain SRA (with the REPA projector untouched), exactly. Incompatible methods are refused.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { sample } from '../../src/cli/sample.ts';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createActor, waitFor } from 'xstate';
import { blockGrads, composeProtocol } from '../../src/protocols/compose.ts';
import { runContext, type StepOutput } from '../../src/protocols/context.ts';
import type { ActorSystem } from '../../src/actors/system.ts';
import { runActors, type ActorRunResult } from '../../src/run/actorRun.ts';
import { loadCheckpoint, type Checkpoint } from '../../src/build/checkpoint.ts';
import { buildHeads } from '../../src/build/parts.ts';
import { modelConfigFor } from '../../src/build/setup.ts';
import { sraTeacherTimes } from '../../src/methods/index.ts';
import { sectionOf } from '../../src/methods/registry.ts';
import { sra as sraMethod, type SraSection } from '../../src/methods/sra/index.ts';
import { repa as repaMethod } from '../../src/methods/repa/index.ts';
import { parseSpec } from '../../src/spec/load.ts';
import type { RunSpec } from '../../src/spec/schema.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { fromData, type Tensor } from '../../src/tensor/tensor.ts';
import { expectMessage, expectNoMessage, readTraceJsonl } from '../../src/trace/index.ts';
import { tinySpec } from '../actors/specs.ts';

const f32 = Math.fround;
const tmp = (what: string) => mkdtempSync(path.join(tmpdir(), `composed-${what}-`));
/**
 * tinySpec's SRA section (sml1, epoch-decay w = 0.2·0.1^(epoch/2) after epoch 0, 4 steps an epoch,
 * L_s 1, L_T 2), with the spec's EMA as written (a scaled SRA teacher would change the EMA of the
 * whole run, and the comparisons with plain REPA below need the same one).
 */
const SRA = { ...sectionOf(tinySpec('sra'), sraMethod), teacher_ema: 'literal' as const };
type SraOptions = Partial<SraSection>;

/** REPA (tinySpec's sections) and SRA with these options, in one spec. */
const composed = (sra: SraOptions = SRA, over: Record<string, unknown> = {}): RunSpec =>
  tinySpec('repa', { protocol: undefined, methods: ['repa', 'sra'], sra: { ...SRA, ...sra }, ...over });

// ------------------------------------------------------------------ the machine alone

/** Answers like the actors would, from fixed tensors; records every request and reply in order. */
class FakeSystem {
  readonly log: string[] = [];
  readonly bodies = new Map<string, any>();
  /** Every body of each message, in order. */
  readonly all = new Map<string, any[]>();
  constructor(private readonly answer: Record<string, (body: any) => unknown>) {}
  inStep<T>(_step: number, fn: () => T): T { return fn(); }
  async release(): Promise<void> { this.log.push('release'); }
  ask(to: string, type: string, body: unknown): Promise<unknown> {
    const key = `${to}.${type}`;
    this.log.push(`send ${key}`);
    this.bodies.set(key, body);
    this.all.set(key, [...(this.all.get(key) ?? []), body]);
    const fn = this.answer[key];
    if (!fn) return Promise.reject(new Error(`fake: no answer for ${key}`));
    // Replies arrive on a later turn, as from a worker: parallel regions both send first.
    return new Promise((resolve) => setImmediate(() => { this.log.push(`reply ${key}`); resolve(fn(body)); }));
  }
}

const B = 4, T = 2, D = 3;
const filled = (shape: number[], f: (i: number) => number): Tensor => fromData(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => f(i)), shape);

async function runFakeStep(spec: RunSpec, step: number) {
  const k = sectionOf(spec, repaMethod).encoder_depth;
  const ls = sectionOf(spec, sraMethod).student_block;
  const gProj = filled([B, T, D], (i) => 0.1 * Math.sin(i + 1));
  const gHead = filled([B, T, D], (i) => 0.3 * Math.cos(2 * i + 1) / 7);
  const sys = new FakeSystem({
    'data.next': () => ({ x: filled([B, 3, 16, 16], (i) => (i % 17) / 17 - 0.5), y: Int32Array.from([0, 1, 2, 3]) }),
    'encoder.features': () => ({ patch: filled([B, T, 5], (i) => i / 40) }),
    'student.forward': () => ({ own: 0.75, terms: { diff: 0.75 }, hidden: Object.fromEntries([k, ls].map((b) => [String(b), filled([B, T, D], (i) => b + i / 100)])), labels: Int32Array.from([0, 4, 2, 3]) }),
    'teacher.forward': () => ({ hidden: filled([B, T, D], (i) => -i / 50) }),
    // One projector actor holds both heads; each reply's sumSq is its share so far.
    'projector.align': (b: { method: string }) => (b.method === 'repa' ? { loss: -0.3, grad: gProj, sumSq: 2 } : { loss: 0.4, grad: gHead, sumSq: 5 }),
    'student.backward': () => ({ sumSq: 5 }),
    'student.step': () => ({ params: {} }),
    'projector.step': () => null,
    'teacher.ema': () => null,
  });
  const config = modelConfigFor(spec, { channels: 3, height: 16, numClasses: 4 });
  const run = runContext(spec, config, 96, 5);
  const actor = createActor(composeProtocol(spec).step, { input: { sys: sys as unknown as ActorSystem, run, step } }).start();
  const done = await waitFor(actor, (s) => s.status === 'done');
  return { sys, out: done.output as StepOutput, gProj, gHead, k, ls };
}

describe('repa+sra step machine (fake actors, no threads)', () => {
  it('overlaps encoder ∥ student, then the teacher, then REPA\'s and SRA\'s align terms; sums both gradients when L_s == k', async () => {
    const spec = composed(); // k = 1, λ = 0.5, L_s = 1
    const { sys, out, gProj, gHead } = await runFakeStep(spec, 3);
    const at = (e: string, from = 0) => { const i = sys.log.indexOf(e, from); expect(i, e).toBeGreaterThanOrEqual(0); return i; };
    // Parallel region: both requests go out before either reply comes back.
    expect(at('send student.forward')).toBeLessThan(at('reply encoder.features'));
    expect(at('send encoder.features')).toBeLessThan(at('reply student.forward'));
    expect(at('send teacher.forward')).toBeGreaterThan(at('reply student.forward'));
    const align1 = at('send projector.align'), align2 = at('send projector.align', align1 + 1);
    expect(align1).toBeGreaterThan(at('reply teacher.forward'));
    expect(align2).toBeGreaterThan(at('reply projector.align'));
    expect(sys.all.get('projector.align')!.map((b) => [b.method, b.term])).toEqual([['repa', 0], ['sra', 0]]);
    expect(at('send student.backward')).toBeGreaterThan(at('reply projector.align', align2));
    // Then: AdamW on the two trainable actors at once, the EMA, the release.
    const sends = sys.log.filter((e) => e.startsWith('send ')).map((e) => e.slice(5));
    expect(sends.at(-4)).toBe('student.backward');
    expect(sends.slice(-3, -1).sort()).toEqual(['projector.step', 'student.step']);
    expect(sends.at(-1)).toBe('teacher.ema');
    for (const a of ['projector', 'student']) for (const b of ['projector', 'student']) expect(at(`send ${a}.step`)).toBeLessThan(at(`reply ${b}.step`));
    expect(sys.log.at(-1)).toBe('release');

    // One gradient for block 1: g_proj + g_head, each rounded to float32 once.
    const grads = sys.bodies.get('student.backward').grads as Record<string, Tensor>;
    expect(Object.keys(grads)).toEqual(['1']);
    const want = Float32Array.from(gProj.data, (v, i) => f32(v + gHead.data[i]));
    expect(Array.from(grads['1'].data)).toEqual(Array.from(want));

    // SRA's u: the first draw of the seed's 'teacher-offset' stream (this run context is fresh).
    const u = new Rng(spec.seed).child('teacher-offset').uniformArray(B);
    const t = sys.bodies.get('student.forward').t as Float64Array;
    expect(Array.from(sys.bodies.get('teacher.forward').t as Float64Array)).toEqual(Array.from(sraTeacherTimes(t, u, SRA.t_max)));
    expect(sys.bodies.get('teacher.forward').labels).toEqual(Int32Array.from([0, 4, 2, 3])); // the student's post-dropout labels
    expect(sys.bodies.get('teacher.forward').block).toBe(2);
    // Weights: λ for REPA's term; epoch 0 (steps 1-4) → w = 0.2 for SRA's.
    expect(sys.all.get('projector.align')!.map((b) => b.weight)).toEqual([0.5, 0.2]);

    if (!out.ok) throw out.failure.error;
    expect(out.log.loss).toBe(f32(f32(0.75 + f32(-0.3 * 0.5)) + f32(0.4 * 0.2)));
    expect(out.log.terms).toEqual({ diff: 0.75, proj: -0.3, align: 0.4, align_weight: 0.2 });
    expect(out.log.grad_norm).toBe(Math.sqrt(5 + 5));
  });

  it('sends the two gradients under their own blocks when L_s != k (the very tensors, no copy)', async () => {
    const { sys, out, gProj, gHead } = await runFakeStep(composed({ student_block: 2, teacher_block: 3 }), 1);
    expect(out.ok).toBe(true);
    const grads = sys.bodies.get('student.backward').grads as Record<string, Tensor>;
    expect(Object.keys(grads).sort()).toEqual(['1', '2']);
    expect(grads['1']).toBe(gProj);
    expect(grads['2']).toBe(gHead);
    expect(sys.bodies.get('student.forward').taps).toEqual([1, 2]);
  });

  it('validates each section with its method\'s schema, and refuses methods that change the same thing', () => {
    expect(() => composed({ t_max: 2 })).toThrow(/sra\.t_max/);
    expect(() => composed({ student_blok: 2 } as never)).toThrow(/student_blok/);
    expect(() => parseSpec({ name: 'x', methods: ['reg', 'repa-e'], encoder: {} })).toThrow(/'reg' and 'repa-e' both change the backbone/);
    expect(() => parseSpec({ name: 'x', methods: ['sit-baseline', 'dit-baseline'] })).toThrow(/train different objectives/);
    expect(() => parseSpec({ name: 'x', methods: ['repa', 'repa'] })).toThrow(/listed twice/);
    expect(() => parseSpec({ name: 'x', methods: ['repa', 'nope'] })).toThrow(/nope/);
  });

  it('blockGrads sums duplicates in float32 and passes single ones through', () => {
    const a = filled([3], (i) => [1, 2 ** -24, 0.1][i]);
    const b = filled([3], (i) => [2 ** -24, 1, 0.2][i]);
    const g = blockGrads([[4, a], [4, b], [2, a]]);
    expect(g['2']).toBe(a);
    expect(Array.from(g['4'].data)).toEqual([f32(1 + 2 ** -24), f32(1 + 2 ** -24), f32(f32(0.1) + f32(0.2))]);
  });
});

// ------------------------------------------------------------------ whole runs on actors

const bitsEqual = (a: Tensor, b: Tensor) => a.data.length === b.data.length && Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));

function expectSameTensors(a: Map<string, Tensor>, b: Map<string, Tensor>, what: string, keep: (k: string) => boolean = () => true): void {
  const ka = [...a.keys()].filter(keep).sort(), kb = [...b.keys()].filter(keep).sort();
  expect(ka, `${what}: names`).toEqual(kb);
  expect(ka.length, `${what}: some tensors`).toBeGreaterThan(0);
  for (const k of ka) expect(bitsEqual(a.get(k)!, b.get(k)!), `${what} '${k}' bit for bit`).toBe(true);
}

const ckpt = (out: string) => loadCheckpoint(path.join(out, 'checkpoint.safetensors'));
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

/** The heads as the actors build them before the first step (same builder, same seed streams), by checkpoint name. */
function initialHeads(r: ActorRunResult): Map<string, Tensor> {
  return buildHeads(r.spec, r.config, 16)!.stateDict(); // the tiny encoder's embed_dim
}

/** A composed run's heads sit under `<method>.`; a single method's under their official names. */
const unprefixed = (m: Map<string, Tensor>, method: string) => new Map([...m].filter(([k]) => k.startsWith(`${method}.`)).map(([k, t]) => [k.slice(method.length + 1), t]));
const unprefixedOpt = (m: Map<string, Tensor>, method: string) => new Map([...m].flatMap(([k, t]): [string, Tensor][] => (!k.startsWith('proj.') ? [[k, t]] : k.startsWith(`proj.${method}.`) ? [[`proj.${k.slice(6 + method.length)}`, t]] : [])));

const byPlacement = new Map<string, { r: ActorRunResult; c: Checkpoint }>();

describe.each(['local', 'worker'] as const)('repa+sra on actors (%s)', (placement) => {
  it('trains 20 steps: finite, decreasing losses; loss = diff + λ·proj + w·align; both heads learn and are saved under proj.', async () => {
    const out = tmp(placement);
    const r = await runActors({ spec: composed(), out, placement, quiet: true, samples: false, trace: placement === 'local' });
    const losses = r.logs.map((l) => l.loss);
    expect(r.logs.map((l) => l.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (const l of r.logs) for (const v of [l.loss, l.grad_norm, ...Object.values(l.terms)]) expect(Number.isFinite(v), `step ${l.step}`).toBe(true);
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)));
    for (const l of r.logs) {
      // SRA's epoch-decay weight in closed form: 4 steps an epoch, 0.2 through epoch 0, then 0.2·0.1^(epoch/2).
      const epoch = Math.floor((l.step - 1) / 4);
      const w = epoch > 0 ? 0.2 * 0.1 ** (epoch / 2) : 0.2;
      expect(l.terms.align_weight).toBeCloseTo(w, 15);
      expect(l.terms.proj).toBeGreaterThanOrEqual(-1);
      expect(l.terms.proj).toBeLessThanOrEqual(1);
      expect(l.loss, `step ${l.step}`).toBe(f32(f32(l.terms.diff + f32(l.terms.proj * 0.5)) + f32(l.terms.align * l.terms.align_weight)));
    }

    const c = ckpt(out);
    byPlacement.set(placement, { r, c });
    const want = initialHeads(r);
    expect([...c.proj.keys()].sort()).toEqual([...want.keys()].sort());
    expect([...c.proj.keys()].some((k) => k.startsWith('repa.projectors.0.'))).toBe(true);
    expect([...c.proj.keys()].some((k) => k.startsWith('sra.ap_head.'))).toBe(true);
    for (const [k, t] of want) expect(bitsEqual(c.proj.get(k)!, t), `head tensor '${k}' changed by training`).toBe(false);
    for (const k of want.keys()) expect(c.opt.has(`proj.${k}.exp_avg`), `opt.proj.${k}.exp_avg`).toBe(true);

    if (placement === 'local') {
      // Routing in the trace: one backward a step to the student carrying both terms; nothing to the teacher or encoder.
      const events = readTraceJsonl(path.join(out, 'trace.jsonl'));
      expectMessage(events, { kind: 'request', to: 'student', type: 'backward', gradOf: 'align' }, 20);
      expectMessage(events, { kind: 'request', to: 'student', type: 'backward', gradOf: 'proj' }, 20);
      expectNoMessage(events, { to: 'teacher', type: 'backward' });
      expectNoMessage(events, { to: 'encoder', type: 'backward' });
      expectMessage(events, { kind: 'request', to: 'projector', type: 'step' }, 20);
    }
  });
});

it('local and worker placements gave the same run bit for bit', () => {
  const [l, w] = [byPlacement.get('local'), byPlacement.get('worker')];
  if (!l || !w) throw new Error('needs both placement runs above');
  expect(w.r.logs).toEqual(l.r.logs);
  for (const key of ['model', 'ema', 'proj', 'opt'] as const) expectSameTensors(w.c[key], l.c[key], key);
});

it('resumes exactly: 6 steps == 3 steps + resume 3 (metrics, weights, optimiser, RNG, loader)', async () => {
  // A constant schedule: a cosine one depends on the total steps, which differ between the two legs.
  const spec = composed(SRA, { train: { ...tinySpec('repa').train, steps: 6, schedule: 'constant' } });
  const a = tmp('whole');
  const whole = await runActors({ spec, out: a, placement: 'local', quiet: true, samples: false });
  const b = tmp('resumed');
  await runActors({ spec: { ...spec, train: { ...spec.train, steps: 3 } }, out: b, placement: 'local', quiet: true, samples: false });
  expect(ckpt(b).state.step).toBe(3);
  const resumed = await runActors({ out: b, resume: true, steps: 6, placement: 'local', quiet: true, samples: false });
  expect(resumed.logs).toEqual(whole.logs.slice(3));
  const metrics = (dir: string) => readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => { const { wall_s: _w, it_s: _i, ...m } = JSON.parse(l); return m; });
  expect(metrics(b)).toEqual(metrics(a));
  expect(metrics(a)).toHaveLength(6);
  const [ca, cb] = [ckpt(a), ckpt(b)];
  for (const key of ['model', 'ema', 'proj', 'opt'] as const) expectSameTensors(cb[key], ca[key], key);
  expect(cb.state.rng).toEqual(ca.state.rng);
  expect(cb.state.loader).toEqual(ca.state.loader);
  expect(cb.state.optStep).toBe(ca.state.optStep);
});

it('refuses to start, naming the field, when an SRA block is deeper than the model', async () => {
  const run = runActors({ spec: composed({ teacher_block: 7 }), out: tmp('deep'), placement: 'local', quiet: true, samples: false });
  await expect(run).rejects.toThrow(/sra\.teacher_block = 7 but the model has 3 blocks/);
});

describe('gradient routing against the shipped protocols', () => {
  const steps = 10;
  const short = (s: RunSpec): RunSpec => ({ ...s, train: { ...s.train, steps } });
  const same = (a: ActorRunResult, b: ActorRunResult, terms: string[]) => {
    expect(a.logs.map((l) => l.step)).toEqual(b.logs.map((l) => l.step));
    for (const [i, l] of a.logs.entries()) {
      const m = b.logs[i];
      expect(l.loss, `loss at step ${l.step}`).toBe(m.loss);
      expect(l.grad_norm, `grad norm at step ${l.step}`).toBe(m.grad_norm);
      expect(l.lr).toBe(m.lr);
      for (const t of terms) expect(l.terms[t], `${t} at step ${l.step}`).toBe(m.terms[t]);
    }
  };
  /** The composed run's state against a single method's: its head is `method`'s, under `<method>.`. */
  const sameState = (c: Checkpoint, p: Checkpoint, method: string) => {
    expectSameTensors(c.model, p.model, 'student');
    expectSameTensors(c.ema, p.ema, 'EMA teacher');
    expectSameTensors(unprefixed(c.proj, method), p.proj, 'the shared head');
    expectSameTensors(unprefixedOpt(c.opt, method), p.opt, 'AdamW state');
    expect(c.state.loader).toEqual(p.state.loader);
    for (const k of ['time', 'noise', 'dropout']) expect(c.state.rng[k], `rng ${k}`).toEqual(p.state.rng[k]);
  };

  // L_s = k here: the REPA gradient and the head's (all zeros) share block 1, so dropping either
  // instead of summing them would show.
  it('w = 0 (L_s = k = 1): exactly the plain REPA actor run', async () => {
    const [o1, o2] = [tmp('w0'), tmp('repa')];
    const both = await runActors({ spec: short(composed({ weight: 0, weight_schedule: 'constant' })), out: o1, placement: 'local', quiet: true, samples: false });
    const repa = await runActors({ spec: short(tinySpec('repa')), out: o2, placement: 'local', quiet: true, samples: false });
    same(both, repa, ['diff', 'proj']);
    for (const l of both.logs) expect(l.terms.align_weight).toBe(0);
    sameState(ckpt(o1), ckpt(o2), 'repa');
  });

  // L_s = 2 ≠ k = 1 here: the two gradients travel under their own blocks.
  it('λ = 0 (L_s = 2, k = 1): exactly the plain SRA actor run, and the REPA projector never changes (weight decay 0)', async () => {
    const base = tinySpec('repa');
    expect(base.train.weight_decay).toBe(0);
    const sraSection = { ...SRA, student_block: 2, teacher_block: 3 };
    const [o1, o2] = [tmp('lambda0'), tmp('sra')];
    const both = await runActors({ spec: short(composed(sraSection, { repa: { ...sectionOf(base, repaMethod), proj_coeff: 0 } })), out: o1, placement: 'local', quiet: true, samples: false });
    const sra = await runActors({ spec: short(tinySpec('sra', { sra: sraSection })), out: o2, placement: 'local', quiet: true, samples: false });
    same(both, sra, ['diff', 'align', 'align_weight']);
    const c = ckpt(o1);
    sameState(c, ckpt(o2), 'sra');
    const init = new Map([...initialHeads(both)].filter(([k]) => k.startsWith('repa.')));
    expectSameTensors(new Map([...c.proj].filter(([k]) => k.startsWith('repa.'))), init, 'REPA projector after 10 steps at λ = 0 vs its initial weights');
  });
});

describe('three methods composed in one spec (REPA + SRA + REG)', () => {
  it('trains on worker actors, samples its grid with REG\'s SDE sampler, and `diffactor sample` reads the checkpoint', async () => {
    const out = tmp('three');
    const spec = tinySpec('repa+sra+reg', { train: { ...tinySpec('repa').train, steps: 4 } });
    const r = await runActors({ spec, out, quiet: true });
    // Every method's term is logged: REPA's and REG's projections share the name, so each carries its method.
    expect(Object.keys(r.logs[3].terms).sort()).toEqual(['align', 'align_weight', 'cls', 'diff', 'reg.proj', 'repa.proj']);
    expect(existsSync(path.join(out, 'samples.png'))).toBe(true);
    const c = ckpt(out);
    expect([...c.model.keys()].some((k) => k.startsWith('cls_projectors2.'))).toBe(true); // REG's backbone
    for (const m of ['repa', 'reg', 'sra']) expect([...c.proj.keys()].some((k) => k.startsWith(`${m}.`)), m).toBe(true);
    const again = path.join(out, 'again.png');
    sample({ checkpoint: path.join(out, 'checkpoint.safetensors'), out: again, perClass: 1, steps: 2, classes: '0,1' });
    expect(existsSync(again)).toBe(true);
  }, 120_000);
});
