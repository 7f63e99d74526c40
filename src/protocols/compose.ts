// The step machine of any run, composed from its methods' routes (DESIGN.md "Methods are modules"):
// each method declares which actor computes each of its terms and what goes where — its draws on
// the coordinator, its student terms on the Student, its align terms on the Projector (the hidden
// state goes there, the weighted gradient comes back), its teacher queries on the EMA Teacher, a
// joint VAE's pass on the VAE and the Student — and this file lays those routes out in one step:
//
//   fetch → [features ∥ VAE encode]? → t, ε, draws → (VAE align pass: student.alignForward →
//   projector.align (frozen) → student.alignBackward)? → [student forward ∥ features? ∥ VAE update
//   (its AdamW, then its loss's adversary, e.g. REPA-E's discriminator, inside the VAE actor)?]
//   → teacher forward per query → projector align per term → loss → student backward (gradients
//   summed per block) → clip → AdamW on every trainable actor → EMA → release
//
// Routes of several methods merge: the student's taps are their union, the align terms follow one
// another, gradients for the same block add. Stop-gradient is the absence of a message: nothing
// carries the diffusion loss to the VAE. The order of every random draw equals the reference
// engine's (run/reference.ts), which test/actors/equivalence.test.ts checks per method.
import { sampleTimes, uniformTimesteps } from '../diffusion/index.ts';
import { empty, type Tensor } from '../tensor/tensor.ts';
import type { RunSpec } from '../spec/schema.ts';
import { stepPlan, drawAll } from '../build/stepPlan.ts';
import type { StepValues } from '../methods/method.ts';
import type { ProtocolActor, ProtocolDefinition } from './index.ts';
import type { StepContext } from './context.ts';
import { ask, checkLoss, clip, compute, ema, fetch, release, stepMachine, together, update, type StateConfig } from './blocks.ts';

const f32 = Math.fround;

/** One gradient per tapped block: two terms that read the same block add (in the step's arena). */
export function blockGrads(parts: [block: number, grad: Tensor][]): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [k, g] of parts) {
    const prev = out[k];
    if (!prev) { out[k] = g; continue; }
    const s = empty(g.shape);
    for (let i = 0; i < g.size; i++) s.data[i] = prev.data[i] + g.data[i];
    out[k] = s;
  }
  return out;
}

/** The step values as the methods' hooks see them (what the reference engine builds inline). */
function stepValues(c: StepContext): StepValues {
  return {
    step: c.step, x: c.batch!.x, y: c.batch!.y, input: c.extra.input, eps: c.eps!, t: c.t as Float64Array,
    feats: c.out.feats ?? null, draws: c.extra.draws ?? {}, stepsPerEpoch: c.run.stepsPerEpoch, path: c.run.path,
  };
}

const featuresBody = (c: StepContext) => ({ x: c.batch!.x });

/** The step machine and the actors a spec's methods need. */
export function composeProtocol(spec: RunSpec): ProtocolDefinition {
  const plan = stepPlan(spec);
  const ddpm = spec.diffusion.objective === 'ddpm';
  const vae = plan.vae;
  const vaeTrains = !!vae && !plan.vaeFrozen; // a frozen joint VAE only encodes
  const headsActor = plan.methods.some((m) => m.def.heads);
  const states: Record<string, StateConfig> = {};
  const order: string[] = [];
  const add = (name: string, make: (next: string) => StateConfig) => { order.push(name); states[name] = make as unknown as StateConfig; };

  add('fetch', (n) => fetch(n));
  // The encoder's features come first when the forward reads them or the VAE's pass needs them.
  const featuresEarly = plan.encoder && (plan.featuresFirst || !!vae);
  if (featuresEarly || vae) {
    add('inputs', (n) => together({
      ...(featuresEarly && { features: (m: string) => ask('encoder', 'features', featuresBody, { save: 'feats', from: 'data' }, m) }),
      ...(vae && { vae: (m: string) => ask('vae', 'encode', (c) => ({ x: c.batch!.x }), { save: 'vae', from: 'data' }, m) }),
    }, n));
  }
  add('noise', (n) => compute((c) => {
    const { spec: s, rngs, path } = c.run;
    const input: Tensor = c.out.vae?.z ?? c.batch!.z ?? c.batch!.x; // a joint VAE's latent, a frozen space's, or the images
    const B = input.shape[0], d = s.diffusion;
    const t = ddpm
      ? uniformTimesteps(rngs.time, B, 1000)
      : sampleTimes(rngs.time, B, d.time_sampling === 'uniform' ? { kind: 'uniform' } : { kind: 'logitNormal', mean: d.logit_normal_mean, std: d.logit_normal_std }, path);
    const eps = rngs.noise.normal(input.shape);
    if (ddpm) return { t, eps, extra: { input } };
    const base = { step: c.step, x: c.batch!.x, y: c.batch!.y, input, eps, t: t as Float64Array, stepsPerEpoch: c.run.stepsPerEpoch, path };
    return { t, eps, extra: { input, draws: drawAll(plan, base, rngs, c.run.encoderDim) } };
  }, n));
  if (vae && vaeTrains) {
    const { m } = vae, term = vae.vae.alignTerm, depth = term.tap(m.s), coeff = vae.vae.alignCoeff(m.s);
    add('vaeAlignForward', (n) => ask('student', 'alignForward', (c) => ({ z: c.out.vae.z, t: c.t, eps: c.eps, y: c.batch!.y, depth, feats: c.out.feats, draws: c.extra.draws }), { save: 'vaeAlignFwd', from: 'vae' }, n));
    add('vaeAlignProject', (n) => ask('projector', 'align', (c) => ({
      method: m.def.name, term: 'vae', hidden: c.out.vaeAlignFwd.hidden, patch: c.out.feats?.patch, cls: c.out.feats?.cls, weight: coeff, frozen: true,
    }), { save: 'vaeAlign', from: 'student' }, n));
    add('vaeAlignBackward', (n) => ask('student', 'alignBackward', (c) => ({ grad: c.out.vaeAlign.grad }), { save: 'gz', from: 'projector', meta: () => ({ grad_of: ['vae_align'] }) }, n));
    add('vaeLoss', (n) => checkLoss((c) => ({ loss: c.out.vae.regLoss + coeff * c.out.vaeAlign.loss, terms: {} }), n, 'vae'));
  }
  add('forward', (n) => together({
    student: (m: string) => ask('student', 'forward', (c) => ({
      x: c.extra.input, y: c.batch!.y, eps: c.eps, t: c.t, taps: plan.taps,
      ...(plan.featuresFirst && { feats: c.out.feats }), draws: c.extra.draws ?? {},
    }), { save: 'fwd', from: vae ? 'vae' : plan.featuresFirst ? 'encoder' : 'data' }, m),
    ...(plan.encoder && !featuresEarly && { features: (m: string) => ask('encoder', 'features', featuresBody, { save: 'feats', from: 'data' }, m) }),
    ...(vaeTrains && { vae: (m: string) => ask('vae', 'update', (c) => ({ grad: c.out.gz.grad, lrFactor: c.run.schedule(c.step - 1) }), { save: 'vaeUpdate', from: 'student', meta: () => ({ grad_of: ['vae_align'] }) }, m) }),
  }, n));
  // The teacher reads the student's post-dropout labels, so it follows the forward.
  plan.teachers.forEach((m) => add(`teacher_${m.def.name}`, (n) => ask('teacher', 'forward', (c) => {
    const q = m.def.teacher!(m.s, stepValues(c));
    return { x: c.extra.input, eps: c.eps, t: q.t, labels: c.out.fwd.labels, block: q.block, ...(plan.featuresFirst && { feats: c.out.feats }), draws: c.extra.draws };
  }, { save: `teacher_${m.def.name}`, from: 'student' }, n)));
  plan.aligns.forEach((a, i) => add(`align_${i}`, (n) => ask('projector', 'align', (c) => ({
    method: a.m.def.name, term: a.index, hidden: c.out.fwd.hidden[a.tap], patch: c.out.feats?.patch, cls: c.out.feats?.cls,
    teacher: c.out[`teacher_${a.m.def.name}`]?.hidden, weight: a.term.weight(a.m.s, stepValues(c)),
  }), { save: `align_${i}`, from: 'student' }, n)));
  add('loss', (n) => checkLoss((c) => {
    const v = ddpm ? null : stepValues(c);
    let loss = c.out.fwd.own;
    const terms: Record<string, number> = { ...c.out.fwd.terms };
    plan.aligns.forEach((a, i) => {
      loss = f32(loss + f32(c.out[`align_${i}`].loss * a.term.weight(a.m.s, v!)));
      terms[a.key] = c.out[`align_${i}`].loss;
    });
    if (v) for (const m of plan.methods) Object.assign(terms, m.def.logged?.(m.s, v) ?? {});
    // The VAE's regulariser terms (encode), its alignment, and from its update the grad norm and what its loss's adversary logged.
    if (vaeTrains) Object.assign(terms, c.out.vae.terms, { vae_align: c.out.vaeAlign.loss, vae_grad_norm: c.out.vaeUpdate.gradNorm }, c.out.vaeUpdate.terms);
    return { loss, terms };
  }, n));
  add('backward', (n) => ask('student', 'backward', (c) => ({ grads: blockGrads(plan.aligns.map((a, i) => [a.tap, c.out[`align_${i}`].grad])) }), {
    ...(plan.aligns.length && { from: 'projector' }),
    // The student's own terms (from its forward's reply) and every align term reach its parameters.
    meta: (c) => ({ grad_of: [...Object.keys(c.out.fwd.terms), ...plan.aligns.map((a) => a.key)] }),
    then: (c, r) => ({ sumSq: { student: r.sumSq, ...(plan.aligns.length && { projector: c.out[`align_${plan.aligns.length - 1}`].sumSq }) } }),
  }, n));
  add('clip', (n) => clip(n));
  add('update', (n) => update(headsActor ? ['student', 'projector'] : ['student'], n));
  add('ema', (n) => ema(n));
  add('release', (n) => release(n));

  const built: Record<string, StateConfig> = {};
  order.forEach((name, i) => { built[name] = (states[name] as unknown as (next: string) => StateConfig)(order[i + 1] ?? 'done'); });
  const actors: ProtocolActor[] = [
    ...(plan.encoder ? [{ name: 'encoder', role: 'encoder' }] : []),
    ...(headsActor ? [{ name: 'projector', role: 'projector' }] : []),
    ...(vae ? [{ name: 'vae', role: 'vae' }] : []),
  ];
  return { name: spec.protocol, step: stepMachine(spec.protocol, built), actors };
}
