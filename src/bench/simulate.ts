// The simulation behind `diffactor simulate` (issue 16): one training step of a spec at any scale,
// with shape-only tensors (kernels/meta.ts), costed on a device profile (devices.ts).
//
// What is the real code path and what is derived:
//   real     the reference engine's Trainer (run/reference.ts) is built from the spec and runs one
//            trainStep() in meta mode: the same backbone, encoder, heads, EMA teacher, VAE, step
//            plan, method terms, backward, clipping, AdamW and EMA as a real run, every kernel call
//            counted (FLOPs, MACs, bytes). Parameters are counted from the built modules.
//   derived  the split across actors (a kernel call goes to the actor owning the weight its gemm
//            reads, or AdamW/EMA updates; other calls to the last such owner), the messages (from
//            the step plan, the route protocols/compose.ts lays out: sizes from the model config),
//            the critical path (the step machine's order, docs/architecture.md), the roofline
//            (per kernel call: max(FLOPs / peak, bytes / bandwidth)), the ring all-reduce
//            (2(N−1)/N · bytes / link + 2(N−1) · latency; NVLink within a node, the network
//            beyond), not overlapped with the backward. The actor runtime itself does not run.
// The data are shape-only too: a dataset of the spec's latent shape (a 256² ImageNet image as
// 4×32×32 SD-VAE latents) whose samples are never read. The encoder sees what the project's
// encoder sees — the model's input, resized bilinearly to grid × patch — so a DINOv2-B/14 here has
// 4 input channels instead of 3 (+150,528 patch-embedding parameters, 0.17 %).
// Not here: printing (cli/simulate.ts), device numbers (devices.ts).
import path from 'node:path';
import type { ImageDataset } from '../data/index.ts';
import { NAMED_DATASET_SHAPES } from '../data/open.ts';
import { newCounters, withMeta, type KernelKind, type MetaCounters } from '../kernels/meta.ts';
import { Trainer } from '../run/reference.ts';
import type { Tape } from '../autograd/tape.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { jointVae } from '../build/parts.ts';
import { sitPreset } from '../models/presets.ts';
import { numTokens } from '../models/config.ts';
import type { RunSpec } from '../spec/schema.ts';
import type { DeviceProfile, Precision } from './devices.ts';

export const ACTORS = ['student', 'encoder', 'projector', 'teacher', 'vae', 'main'] as const;

export interface ActorCost {
  actor: string;
  trainable: number;
  frozen: number;
  /** Forward, backward, update (AdamW + clipping), EMA: FLOPs, MACs, bytes, roofline seconds. */
  phases: Record<'forward' | 'backward' | 'update' | 'ema', { flops: number; macs: number; bytes: number; seconds: number }>;
  /** AdamW's m and v (fp32) of its trainable parameters, bytes. */
  optimizerBytes: number;
  /** The EMA copy it holds (the teacher), bytes. */
  emaBytes: number;
  messages: { count: number; bytes: number };
}

export interface Message { from: string; to: string; what: string; shape: number[]; bytes: number }

export interface SimulationReport {
  spec: string;
  device: string;
  deviceSource: string;
  precision: Precision;
  gpus: number;
  /** Samples per replica per step. */
  batch: number;
  actors: ActorCost[];
  messages: Message[];
  /** Bytes of the tensors the one tape holds when backward starts (saved activations; an upper bound). */
  activationBytes: number;
  /**
   * One sample's forward per model, in the papers' unit (G, fvcore's convention): linear and conv
   * MACs, attention's QKᵀ and PV MACs (fvcore does not see a fused SDPA), and the elements layer
   * norms normalise (fvcore: 4 FLOPs each without affine, 5 with).
   */
  gmacsPerSample: Record<string, { linear: number; attention: number; normElements: number }>;
  allReduce: { bytes: number; seconds: number };
  /** Virtual-time schedule of one step: slices per actor; the critical path and its length. */
  schedule: { actor: string; name: string; start: number; seconds: number }[];
  criticalPath: string[];
  stepSeconds: number;
  /** Wall time of the simulation itself. */
  simulatedIn: number;
}

/** A dataset of the spec's shape whose samples are never read (meta mode writes nothing). */
function metaDataset(channels: number, side: number, classes: number, count: number): ImageDataset {
  return {
    name: 'meta', count, channels, height: side, width: side, numClasses: classes,
    classNames: Array.from({ length: classes }, (_, i) => String(i)),
    get: (i: number) => i % classes,
    label: (i: number) => i % classes,
  };
}

export interface SimulateOptions {
  device: DeviceProfile;
  gpus?: number;
  /** Samples per replica (default: train.batch_size / gpus, the papers' global batch split). */
  batch?: number;
  precision?: Precision;
  /**
   * The data: channels × side² and classes. Default: a named dataset's own (builtin, fashion-mnist,
   * cifar10) at spec.data.size²; otherwise spec.data.size², the model preset's channels
   * and classes (SiT-XL/2: 4 and 1000, ImageNet as SD-VAE latents, 32 for 256² images; P2: 1 and
   * 10), or 3 channels (pixels) when a method trains the VAE or the dataset is `imagenet` (pixels).
   */
  data?: { channels: number; side: number; classes: number };
}

const count = (ts: Iterable<Tensor>): number => { let n = 0; for (const t of ts) n += t.size; return n; };

export function simulate(spec: RunSpec, o: SimulateOptions): SimulationReport {
  const t0 = performance.now();
  const gpus = o.gpus ?? 1;
  if (!Number.isInteger(gpus) || gpus < 1) throw new Error(`--gpus: expected a positive integer, got ${gpus}`);
  const batch = o.batch ?? Math.max(1, Math.round(spec.train.batch_size / gpus));
  const dev = o.device, precision = o.precision ?? dev.precision;
  const peak = dev.matmul[precision];
  if (!peak) throw new Error(`--precision: device ${dev.name} has no ${precision} figure (it has ${Object.keys(dev.matmul).join(', ')})`);
  // Activations and weights move at the precision's width; AdamW and EMA keep fp32 masters.
  const scale = precision === 'bf16' ? 0.5 : 1;
  const time = (kind: KernelKind, flops: number, bytes: number): number => {
    const f = kind === 'gemm' || kind === 'attention' ? peak : dev.vector;
    const b = kind === 'optimizer' || kind === 'ema' ? bytes : bytes * scale;
    return Math.max(flops / f, b / dev.memory);
  };
  const preset = sitPreset(spec.model.preset);
  // Pixels (dataset `imagenet`, which the spec loader resolves to a path: a VAE the method trains,
  // or a model on pixels: DiGIT, RAE) have 3 channels.
  const pixels = jointVae(spec) !== null || path.basename(spec.data.dataset) === 'imagenet';
  // A named dataset (the shipped specs) has its own shape; the model's latent space, if any, encodes it.
  const named = NAMED_DATASET_SHAPES[spec.data.dataset];
  const d = o.data ?? (named
    ? { channels: named.channels, side: spec.data.size, classes: named.classes }
    : { channels: pixels ? 3 : preset.inChannels, side: spec.data.size, classes: preset.numClasses });
  const data = metaDataset(d.channels, d.side, d.classes, 4 * batch);
  const local: RunSpec = { ...spec, train: { ...spec.train, batch_size: batch } };
  const c = newCounters(time);
  let activationBytes = 0;
  // Several backwards in a step (REPA-E's discriminator after the VAE): the largest tape is the step's peak.
  c.onBackward = (tape) => { activationBytes = Math.max(activationBytes, tapeBytes(tape as Tape)); };

  const tr = withMeta(c, () => new Trainer(local, data));
  const owners: [string, Tensor[]][] = [
    ['student', tr.model.parameters()],
    ['teacher', tr.emaModel.parameters()],
    ['encoder', tr.encoder?.vit.parameters() ?? []],
    ['projector', tr.heads?.parameters() ?? []],
    ['vae', tr.vae?.parameters() ?? []],
  ];
  for (const [actor, ps] of owners) for (const p of ps) c.owners.set(p.data, actor);
  // The hidden states the student's forward returns, by block: their shapes size the align messages
  // (U-REPA's middle stage holds a quarter of the tokens).
  const hiddenShapes = new Map<number, number[]>();
  const student = tr.model as unknown as { forward: (...a: unknown[]) => { hidden?: Map<number, Tensor> } };
  const forward = student.forward.bind(student);
  student.forward = (...a) => {
    const o = forward(...a);
    for (const [k, h] of o.hidden ?? []) hiddenShapes.set(k, [...h.shape]);
    return o;
  };
  const enc = tr.encoder;
  if (enc) {
    const features = enc.features.bind(enc);
    enc.features = (x) => { c.actor = 'encoder'; return features(x); };
  }
  c.by.clear();
  withMeta(c, () => { c.actor = 'main'; tr.trainStep(); });
  const gmacs = perSample(c, batch);

  // Parameters, state and the split.
  const trainable = (ps: Tensor[]) => count(ps.filter((p) => p.requiresGrad));
  const actors: ActorCost[] = [];
  for (const actor of ACTORS) {
    const ps = owners.find(([a]) => a === actor)?.[1] ?? [];
    const phases = { forward: zero(), backward: zero(), update: zero(), ema: zero() };
    for (const [key, v] of c.by) {
      const [a, phase, kind] = key.split('|');
      if (a !== actor) continue;
      const into = kind === 'optimizer' ? phases.update : kind === 'ema' ? phases.ema : phase === 'backward' ? phases.backward : phases.forward;
      into.flops += v.flops; into.macs += v.macs; into.bytes += v.bytes; into.seconds += v.seconds;
    }
    const tp = actor === 'teacher' ? 0 : trainable(ps);
    const any = ps.length > 0 || Object.values(phases).some((p) => p.flops > 0);
    if (!any) continue;
    actors.push({
      actor, trainable: tp, frozen: count(ps) - tp, phases,
      optimizerBytes: 2 * 4 * tp, emaBytes: actor === 'teacher' ? 4 * count(ps) : 0, messages: { count: 0, bytes: 0 },
    });
  }

  const messages = routeMessages(tr, batch, precision, hiddenShapes);
  for (const m of messages) {
    for (const a of actors) if (a.actor === m.from) { a.messages.count++; a.messages.bytes += m.bytes; }
  }
  const gradBytes = 4 * actors.reduce((s, a) => s + (a.actor === 'student' || a.actor === 'projector' ? a.trainable : 0), 0);
  // A ring is as fast as its slowest hop: NVLink inside a node, the network port once it spans nodes.
  const link = dev.network && gpus > dev.network.perNode ? dev.network : dev.link;
  const allReduce = gpus > 1
    ? { bytes: (2 * (gpus - 1) / gpus) * gradBytes, seconds: (2 * (gpus - 1) / gpus) * gradBytes / link.bandwidth + 2 * (gpus - 1) * link.latency }
    : { bytes: 0, seconds: 0 };
  const { schedule, critical, total } = stepSchedule(actors, allReduce.seconds, tr.plan.featuresFirst);
  return {
    spec: spec.name, device: dev.name, deviceSource: dev.source, precision, gpus, batch, actors, messages,
    activationBytes, gmacsPerSample: gmacs, allReduce, schedule, criticalPath: critical, stepSeconds: total,
    simulatedIn: (performance.now() - t0) / 1000,
  };
}

const zero = () => ({ flops: 0, macs: 0, bytes: 0, seconds: 0 });

/** Unique non-leaf tensors the tape's nodes hold (outputs and inputs): what a backward can read. */
function tapeBytes(tape: Tape): number {
  const seen = new Set<Tensor>();
  for (const { node, output } of tape.nodes) {
    seen.add(output);
    for (const t of node.inputs) if (t && !t.isLeaf) seen.add(t);
  }
  let n = 0;
  for (const t of seen) n += 4 * t.size;
  return n;
}

/**
 * One sample's forward per model from the step's own counts (every count is linear in the batch):
 * the forward-phase kernels each actor ran, divided by the batch.
 */
function perSample(c: MetaCounters, b: number): SimulationReport['gmacsPerSample'] {
  const out: SimulationReport['gmacsPerSample'] = {};
  for (const [key, v] of c.by) {
    const [actor, phase, kind] = key.split('|');
    if (phase !== 'forward' || !['gemm', 'attention', 'norm'].includes(kind)) continue;
    const e = (out[actor] ??= { linear: 0, attention: 0, normElements: 0 });
    if (kind === 'gemm') e.linear += v.macs / b / 1e9;
    if (kind === 'attention') e.attention += v.macs / b / 1e9;
    if (kind === 'norm') e.normElements += v.elems / b / 1e9;
  }
  return out;
}

/**
 * The messages of one step, from the step plan (the route protocols/compose.ts lays out): the
 * coordinator sends the batch to the student (and encoder, VAE, teacher), the encoder returns its
 * features, the student sends each tapped hidden state to the projector and gets its gradient
 * back (one message per align term, of the shape its forward returned), a teacher sends its hidden
 * states. Activation tensors at the precision's width.
 */
function routeMessages(tr: Trainer, b: number, precision: Precision, hiddenShapes: ReadonlyMap<number, number[]>): Message[] {
  const w = precision === 'bf16' ? 2 : 4, cfg = tr.config, plan = tr.plan;
  const img = [b, cfg.inChannels, cfg.inputSize, cfg.inputSize];
  const tokens = numTokens(cfg) + plan.prefixTokens, D = cfg.hiddenSize;
  const msgs: Message[] = [];
  const m = (from: string, to: string, what: string, shape: number[], width = w) =>
    msgs.push({ from, to, what, shape, bytes: width * shape.reduce((a, x) => a * x, 1) });
  m('main', 'student', 'x, ε (and t, y)', [2, ...img]);
  if (plan.encoder && tr.encoder) {
    m('main', 'encoder', 'x', img);
    const dz = tr.encoder.dim, T = numTokens(cfg);
    m('encoder', plan.featuresFirst ? 'student' : 'projector', 'patch + cls features', [b, T + 1, dz]);
  }
  for (const a of plan.aligns) {
    const shape = hiddenShapes.get(a.tap) ?? [b, tokens, D];
    m('student', 'projector', `hidden after block ${a.tap} (${a.key})`, shape);
    m('projector', 'student', `∂L/∂hidden of block ${a.tap}`, shape);
  }
  for (const t of plan.teachers) {
    m('main', 'teacher', `x, ε, t_T (${t.def.name})`, [2, ...img]);
    m('teacher', 'projector', `teacher hidden state (${t.def.name})`, [b, tokens, D]);
  }
  if (plan.vae) {
    m('main', 'vae', 'x (pixels)', img);
    m('vae', 'student', 'z', img);
  }
  m('student', 'main', 'loss terms', [8], 4);
  return msgs;
}

/**
 * One step in virtual time, in the step machine's order (docs/architecture.md): features ∥
 * student forward (features first when the backbone reads them) → teacher → projector (forward and
 * backward) → student backward → all-reduce → updates (each actor its own AdamW, in parallel) → EMA.
 * Returns the slices and the critical path (the longest chain).
 */
function stepSchedule(actors: ActorCost[], allReduce: number, featuresFirst: boolean): { schedule: SimulationReport['schedule']; critical: string[]; total: number } {
  const get = (a: string) => actors.find((x) => x.actor === a);
  const ph = (a: string, p: keyof ActorCost['phases']) => get(a)?.phases[p].seconds ?? 0;
  const schedule: SimulationReport['schedule'] = [];
  const critical: string[] = [];
  let t = 0;
  const stage = (parts: [string, string, number][]) => {
    const live = parts.filter(([, , s]) => s > 0);
    if (!live.length) return;
    for (const [actor, name, s] of live) schedule.push({ actor, name, start: t, seconds: s });
    const longest = live.reduce((x, y) => (y[2] > x[2] ? y : x));
    critical.push(`${longest[0]}.${longest[1]}`);
    t += longest[2];
  };
  stage([['main', 'fetch + noise', ph('main', 'forward')]]);
  stage([['vae', 'forward', ph('vae', 'forward')]]);
  if (featuresFirst) { stage([['encoder', 'features', ph('encoder', 'forward')]]); stage([['student', 'forward', ph('student', 'forward')]]); }
  else stage([['encoder', 'features', ph('encoder', 'forward')], ['student', 'forward', ph('student', 'forward')]]);
  stage([['teacher', 'hidden state', ph('teacher', 'forward')]]);
  stage([['projector', 'align terms', ph('projector', 'forward')]]);
  stage([['projector', 'backward', ph('projector', 'backward')], ['vae', 'backward', ph('vae', 'backward')]]);
  stage([['student', 'backward', ph('student', 'backward') + ph('main', 'backward')]]);
  stage([['main', 'all-reduce', allReduce]]);
  stage([['student', 'update', ph('student', 'update')], ['projector', 'update', ph('projector', 'update')], ['vae', 'update', ph('vae', 'update')]]);
  stage([['teacher', 'ema', ph('teacher', 'ema') + ph('student', 'ema')]]);
  return { schedule, critical, total: t };
}

/** The Chrome/Perfetto trace of the schedule: one track per actor, slices in virtual µs. */
export function perfettoTrace(r: SimulationReport): object {
  const tracks = [...new Set(r.schedule.map((s) => s.actor))];
  const events: object[] = tracks.map((a, i) => ({ ph: 'M', name: 'thread_name', pid: 1, tid: i + 1, args: { name: a } }));
  for (const s of r.schedule) {
    events.push({ ph: 'X', name: s.name, cat: 'simulated', pid: 1, tid: tracks.indexOf(s.actor) + 1, ts: s.start * 1e6, dur: s.seconds * 1e6, args: { critical: r.criticalPath.includes(`${s.actor}.${s.name}`) } });
  }
  return { traceEvents: events, displayTimeUnit: 'ms', metadata: { spec: r.spec, device: r.device, gpus: r.gpus, batch: r.batch, virtual: true } };
}

