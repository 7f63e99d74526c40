// The reference engine: a plain in-process loop (no actors) that interprets any run's methods on
// one tape. One `trainStep()` is fetch → (the joint VAE's forward) → t, ε → the methods' draws →
// encoder features → (the VAE's alignment pass through the frozen backbone) → the student's forward
// → the teacher's hidden states → L = Σ own terms + Σ align terms (+ the VAE's loss) → one backward
// → clip (the VAE on its own) → the VAE's AdamW, then its loss's adversary's (JointVae.afterUpdate)
// → AdamW → EMA. It knows no method: the step plan (build/stepPlan.ts) and the registry's
// definitions say what each step holds. The actor runtime is proven equal to it
// step for step (test/actors/equivalence.test.ts), method by method. Every random draw comes from a
// named child stream of the spec's seed (time, noise, label dropout, loader, and the methods'), and
// those streams' counters are checkpointed, so a resumed run reproduces an uninterrupted one bit for bit.
// Not here: the run directory (run.ts), sampling (build/draw.ts), files (build/checkpoint.ts).
import { Loader, type ImageDataset } from '../data/index.ts';
import type { SiTConfig } from '../models/config.ts';
import { SiT } from '../models/sit.ts';
import { AdamW, Ema, clipGradNorm, type Schedule } from '../optim/index.ts';
import { Rng } from '../tensor/rng.ts';
import { tidy } from '../tensor/tidy.ts';
import { ones, type Tensor } from '../tensor/tensor.ts';
import { backward, detach, noGrad, withLinearPrecision } from '../autograd/index.ts';
import {
  interpolantByName, uniformTimesteps, DdpmSchedule, qSample, epsLoss, hybridLoss, type Interpolant,
} from '../diffusion/index.ts';
import { vaeFactor, type Posterior, type VAE } from '../models/vae.ts';
import type { FrozenEncoder } from '../methods/encoder.ts';
import { plainFlowForward } from '../methods/flowForward.ts';
import type { StepValues, VaeLossParts, WeightedTerm } from '../methods/method.ts';
import type { RunSpec } from '../spec/schema.ts';
import { checkSpecConsistency, modelConfigFor, vaeConfigFor } from '../build/setup.ts';
import { latentSpaceOf, type LatentSpace } from '../build/latentSpace.ts';
import { runLatentCache, type LatentCache } from '../build/latentCache.ts';
import { checkFitsMemory } from '../build/memory.ts';
import { checkDiscState, type Checkpoint, type TrainState } from '../build/checkpoint.ts';
import {
  backboneHook, buildBackbone, buildEncoder, buildHeads, buildVae, emaDecay, emaTensors, hiddenAt, samplesToImages, samplingWeights, type Backbone, type MethodHeads,
} from '../build/parts.ts';
import { scheduleFor, flowTimes } from '../build/schedule.ts';
import { NonFiniteLossError, type StepLog } from '../build/stepLog.ts';
import { drawAll, loggedNumbers, ownTerms, stepPlan, weightedSum, type StepPlan } from '../build/stepPlan.ts';

/** The model of a step's input: frozen (no parameter gradients) and in eval mode while fn runs, then restored. */
export function frozenEval<T>(modules: { parameters(): Tensor[]; training: boolean; train(on?: boolean): unknown }[], fn: () => T): T {
  const ps = modules.flatMap((m) => m.parameters());
  const was = ps.map((p) => p.requiresGrad), modes = modules.map((m) => m.training);
  for (const p of ps) p.requireGrad(false);
  for (const m of modules) m.train(false);
  try { return fn(); } finally {
    ps.forEach((p, i) => p.requireGrad(was[i]));
    modules.forEach((m, i) => m.train(modes[i]));
  }
}

export class Trainer {
  readonly spec: RunSpec;
  readonly config: SiTConfig;
  readonly plan: StepPlan;
  readonly model: Backbone;
  /** The EMA teacher as a full model (its parameters are the EMA targets). */
  readonly emaModel: Backbone;
  /** The methods' heads (trained, checkpointed under `proj.`); null when no method has any. */
  readonly heads: MethodHeads | null;
  readonly encoder: FrozenEncoder | null;
  /** A VAE trained with the backbone and its own AdamW; null otherwise. */
  readonly vae: VAE | null;
  readonly vaeOpt: AdamW | null;
  /** The modules of the VAE's loss (JointVae.lossParts: a frozen perceptual net, a discriminator and its AdamW); null without a VAE. */
  readonly vaeParts: VaeLossParts | null;
  /** The frozen latent space the model works in (spec.latent), or null: it works on the images. */
  readonly space: LatentSpace | null;
  private readonly latents: LatentCache | null;
  readonly ema: Ema;
  private readonly emaCopied: [Tensor, Tensor][];
  readonly opt: AdamW;
  readonly loader: Loader;
  readonly schedule: Schedule;
  /** Named streams: time, noise, dropout, and the methods' (teacher-offset, cls-noise, posterior). */
  readonly rngs: Record<string, Rng>;
  /** Steps counted as one epoch by epoch-based schedules. */
  readonly stepsPerEpoch: number;
  readonly path: Interpolant;
  step = 0;
  wallSeconds = 0;
  private readonly ddpm: DdpmSchedule | null;

  /** `o.dataset`: the --data override the data was opened with (default spec.data.dataset); a joint VAE's loss parts read it. */
  constructor(spec: RunSpec, data: ImageDataset, o: { dataset?: string } = {}) {
    this.spec = spec;
    this.space = latentSpaceOf(spec);
    const vaeConfig = vaeConfigFor(spec, data);
    this.config = modelConfigFor(spec, data, vaeConfig);
    checkSpecConsistency(spec, this.config.depth);
    checkFitsMemory(spec, this.config); // before anything is allocated
    this.plan = stepPlan(spec);
    this.encoder = this.plan.encoder ? buildEncoder(spec, data, this.config) : null;
    const encoderDim = this.encoder?.dim ?? null;
    this.model = buildBackbone(spec, this.config, encoderDim, vaeConfig, { trained: true });
    this.emaModel = buildBackbone(spec, this.config, encoderDim, vaeConfig).eval();
    const src = emaTensors(spec, this.model), dst = emaTensors(spec, this.emaModel);
    this.ema = new Ema(dst.averaged, src.averaged, spec.train.ema_decay);
    this.ema.copyFrom();
    this.emaCopied = dst.copied.map(([, t], i) => [t, src.copied[i][1]]);
    for (const [d, c] of this.emaCopied) d.data.set(c.data); // the start-of-training copy, as the Teacher's 'copy'
    this.heads = buildHeads(spec, this.config, encoderDim);
    const t = spec.train;
    const params = [...this.model.namedParameters(), ...(this.heads?.namedParameters('proj.') ?? [])];
    this.opt = new AdamW(params, { lr: t.lr, betas: [t.beta1, t.beta2], weightDecay: t.weight_decay });
    this.vae = vaeConfig ? buildVae(spec, vaeConfig) : null;
    this.vaeOpt = this.vae
      ? new AdamW(this.vae.namedParameters(), { lr: this.plan.vae!.vae.lr(this.plan.vae!.m.s), betas: [t.beta1, t.beta2], weightDecay: t.weight_decay })
      : null;
    const j = this.plan.vae;
    this.vaeParts = j && this.vae
      ? j.vae.lossParts?.(j.m.s, { dataset: o.dataset ?? spec.data.dataset, channels: data.channels, seed: spec.seed, train: spec.train }) ?? {}
      : null;
    this.loader = new Loader(data, { batchSize: t.batch_size, seed: spec.seed, hflip: spec.data.hflip });
    this.latents = this.space && !spec.data.hflip ? runLatentCache(this.space, data, spec.train) : null;
    this.schedule = scheduleFor(spec);
    this.stepsPerEpoch = Math.max(1, Math.floor(data.count / t.batch_size));
    const root = new Rng(spec.seed);
    this.rngs = { time: root.child('time'), noise: root.child('noise'), dropout: root.child('label-dropout') };
    for (const name of this.plan.streams) this.rngs[name] = root.child(name);
    this.ddpm = spec.diffusion.objective === 'ddpm' ? DdpmSchedule.linear() : null;
    this.path = interpolantByName(spec.diffusion.path);
  }

  /** One optimisation step; returns what metrics.jsonl records. Throws NonFiniteLossError on NaN/Inf. */
  trainStep(): StepLog {
    const stepNo = this.step + 1;
    // train.precision bf16: the step's Linear products in bf16 (frozen encoders' too: unlike the
    // actor run, where only the trained roles switch).
    const log = withLinearPrecision(this.spec.train.precision, () => tidy(() => {
      const { x, y, indices } = this.loader.next(); // (B, C, H, W), (B)
      // A frozen latent space's input (B, L, h, w), as the Data actor's: cached per image unless mirrored.
      const z = this.latents ? this.latents.latents(indices) : this.space?.encode(x) ?? null;
      const r = this.ddpm ? this.ddpmLoss(z ?? x, y) : this.flowLoss(x, y, stepNo, z);
      const value = r.loss.item();
      if (!Number.isFinite(value)) throw new NonFiniteLossError(stepNo, value, `${this.spec.protocol} loss of the student`);
      backward(r.vaeLoss ? [[r.loss, ones1(r.loss)], [r.vaeLoss, ones1(r.vaeLoss)]] : r.loss);
      const factor = this.schedule(this.step);
      if (this.vae && !this.plan.vaeFrozen) {
        const vaeGradNorm = clipGradNorm(this.vaeOpt!.params, this.spec.train.grad_clip);
        if (!Number.isFinite(vaeGradNorm)) throw new NonFiniteLossError(stepNo, vaeGradNorm, 'gradient norm of the VAE');
        this.vaeOpt!.step(factor);
        this.vaeOpt!.zeroGrad();
        r.terms.vae_grad_norm = vaeGradNorm;
        // The adversary of the VAE's loss steps right after it, on x̂ detached (as the VAE actor's update).
        const { m, vae } = this.plan.vae!;
        if (vae.afterUpdate) Object.assign(r.terms, vae.afterUpdate(m.s, this.vaeParts!, x, r.recon!, stepNo, factor));
      }
      const gradNorm = clipGradNorm(this.opt.params, this.spec.train.grad_clip);
      if (!Number.isFinite(gradNorm)) throw new NonFiniteLossError(stepNo, gradNorm, 'gradient norm');
      this.opt.step(factor);
      this.opt.zeroGrad();
      this.ema.update(emaDecay(this.spec, this.step));
      for (const [dst, src] of this.emaCopied) dst.data.set(src.data);
      return { step: stepNo, loss: value, terms: r.terms, lr: this.spec.train.lr * factor, grad_norm: gradNorm };
    }));
    this.step = stepNo;
    return log;
  }

  /** DiT's objective: ε-prediction on the DDPM schedule, the hybrid loss when the model learns Σ. */
  private ddpmLoss(x: Tensor, y: Int32Array): { loss: Tensor; terms: Record<string, number>; vaeLoss?: Tensor; recon?: Tensor } {
    if (!(this.model instanceof SiT)) throw new Error('DDPM training needs the plain SiT/DiT model');
    const eps = this.rngs.noise.normal(x.shape); // (B, C, H, W)
    const t = uniformTimesteps(this.rngs.time, x.shape[0], this.ddpm!.T);
    const xt = qSample(this.ddpm!, x, eps, t);
    const { out } = this.model.forward(xt, t, y, { rng: this.rngs.dropout });
    if (!this.config.learnSigma) return { loss: epsLoss(out, eps).loss, terms: {} };
    const h = hybridLoss(this.ddpm!, out, x, xt, eps, t);
    return { loss: h.loss, terms: { mse: mean1(h.mse), vb: mean1(h.vb) } };
  }

  /**
   * A flow-matching step of the run's methods, on one tape: the student's loss Σ own + Σ align, and
   * with a joint VAE its loss (regulariser + c·align through the frozen, eval-mode backbone on z in
   * the graph), while the student reads z detached — so one backward gives each its own gradients.
   */
  private flowLoss(x: Tensor, y: Int32Array, stepNo: number, z: Tensor | null): { loss: Tensor; terms: Record<string, number>; vaeLoss?: Tensor; recon?: Tensor } {
    const plan = this.plan, B = x.shape[0];
    const terms: Record<string, number> = {};
    const feats = this.encoder ? this.encoder.features(x) : null; // patch (B, T, Dz), cls (B, Dz); noGrad
    // z (B, L, h, w) and recon; a frozen VAE only encodes (the same posterior draw, no tape, no decoder).
    const vaeRng = this.vae ? this.rngs[this.plan.vae!.vae.stream] : null;
    const post: (Posterior & { recon?: Tensor }) | null = !this.vae ? null : plan.vaeFrozen ? noGrad(() => this.vae!.encode(x, vaeRng!)) : this.vae.forward(x, vaeRng!);
    const input = post ? post.z : z ?? x;
    const t = flowTimes(this.spec, this.rngs.time, B, this.path); // (B)
    const eps = this.rngs.noise.normal(input.shape);
    const base = { step: stepNo, x, y, input, eps, t, stepsPerEpoch: this.stepsPerEpoch, path: this.path };
    const draws = drawAll(plan, base, this.rngs, this.encoder?.dim ?? null);
    const v: StepValues = { ...base, feats, draws };
    let vaeLoss: Tensor | undefined;
    if (post && plan.vae && !plan.vaeFrozen) {
      const { m, vae } = plan.vae;
      const reg = vae.regularizer(m.s, x, post.recon!, post, this.vaeParts!, stepNo);
      const term = vae.alignTerm, heads = this.heads!.of(m.def.name);
      const align = frozenEval([this.model, heads], () => {
        const h = hiddenAt(this.spec, this.model, { input: post.z, eps, t, y, feats, draws }, term.tap(m.s), this.path); // (B, T, D)
        return term.loss(m.s, heads, h, { feats, teacher: null, prefixTokens: plan.prefixTokens });
      });
      const c = vae.alignCoeff(m.s);
      vaeLoss = weightedSum([{ value: reg.loss, weight: 1 }, { value: align, weight: c }]);
      const total = reg.loss.item() + c * align.item();
      if (!Number.isFinite(total)) throw new NonFiniteLossError(stepNo, total, `${this.spec.protocol} loss of the VAE`);
      Object.assign(terms, reg.terms, { vae_align: align.item() });
    }
    const fwd = { input: post ? detach(post.z) : input, eps, t, y, taps: plan.taps, feats, draws };
    const bh = backboneHook(this.spec);
    const f = bh ? bh.hook.forward(bh.m.s, this.model, fwd, this.path, this.rngs.dropout) : plainFlowForward(this.model, fwd, this.path, this.rngs.dropout);
    const parts: WeightedTerm[] = [];
    for (const [k, w] of ownTerms(plan, f)) {
      terms[k] = w.value.item();
      parts.push(w);
    }
    const teacher = new Map(plan.teachers.map((m) => {
      const q = m.def.teacher!(m.s, v);
      const hT = noGrad(() => hiddenAt(this.spec, this.emaModel, { input: fwd.input, eps, t: q.t, y: f.labels, feats, draws }, q.block, this.path)); // (B, T, D)
      return [m.def.name, hT] as const;
    }));
    for (const a of plan.aligns) {
      const value = a.term.loss(a.m.s, this.heads!.of(a.m.def.name), f.hidden.get(a.tap)!, { feats, teacher: teacher.get(a.m.def.name) ?? null, prefixTokens: plan.prefixTokens });
      terms[a.key] = value.item();
      parts.push({ value, weight: a.term.weight(a.m.s, v) });
    }
    Object.assign(terms, loggedNumbers(plan, v));
    return { loss: weightedSum(parts), terms, vaeLoss, recon: post?.recon };
  }

  /**
   * drawSamples' output as images: latents of a frozen latent space or of a joint VAE (decoded with
   * the EMA model's buffers) are decoded; otherwise they are images.
   */
  samplesToImages(samples: Float32Array, n: number): { images: Float32Array; channels: number; side: number } {
    return samplesToImages(this.spec, this.config, this.vae, this.emaModel.stateDict(), samples, n);
  }

  /** The EMA weights a plain SiT samples with. */
  samplingModel(): Backbone {
    const w = samplingWeights(this.spec, this.emaModel.stateDict());
    if (w.size === this.emaModel.stateDict().size) return this.emaModel;
    const m = new SiT(this.config, new Rng(0));
    m.loadStateDict(w);
    return m.eval();
  }

  trainState(): TrainState {
    return {
      step: this.step,
      rng: Object.fromEntries(Object.entries(this.rngs).map(([k, r]) => [k, r.state()])),
      loader: this.loader.state(),
      optStep: this.opt.state().step,
      wallSeconds: this.wallSeconds,
      ...(this.vaeOpt && { vaeOptStep: this.vaeOpt.state().step }),
      ...(this.vaeParts?.disc && { discOptStep: this.vaeParts.disc.opt.state().step }),
    };
  }

  checkpoint(): Checkpoint {
    return {
      config: this.config,
      spec: this.spec,
      state: this.trainState(),
      model: this.model.stateDict(),
      ema: this.emaModel.stateDict(),
      proj: this.heads?.stateDict() ?? new Map(),
      opt: this.opt.state().tensors,
      ...(this.vae && { vae: this.vae.stateDict(), vaeOpt: this.vaeOpt!.state().tensors }),
      ...(this.vaeParts?.disc && { disc: this.vaeParts.disc.module.stateDict(), discOpt: this.vaeParts.disc.opt.state().tensors }),
    };
  }

  /** Continue from a checkpoint: weights, EMA, heads, optimiser moments, RNG counters, data position (and a joint VAE and its AdamW). */
  restore(c: Checkpoint): void {
    if (this.vae) {
      if (!c.vae?.size || c.state.vaeOptStep === undefined) throw new Error(`checkpoint: ${this.spec.protocol} needs 'vae.' tensors and the VAE optimiser's step`);
      this.vae.loadStateDict(c.vae);
      this.vaeOpt!.loadState({ step: c.state.vaeOptStep, tensors: c.vaeOpt ?? new Map() });
    } else if (c.vae?.size) {
      throw new Error(`checkpoint: ${c.vae.size} 'vae.' tensors but ${this.spec.protocol} trains no VAE`);
    }
    const disc = this.vaeParts?.disc ?? null;
    checkDiscState(c, !!disc, this.spec.protocol);
    if (disc) {
      disc.module.loadStateDict(c.disc!);
      disc.opt.loadState({ step: c.state.discOptStep!, tensors: c.discOpt ?? new Map() });
    }
    this.model.loadStateDict(c.model);
    this.emaModel.loadStateDict(c.ema);
    if (this.heads) this.heads.loadStateDict(c.proj);
    else if (c.proj.size) throw new Error(`checkpoint: ${c.proj.size} 'proj.' tensors but ${this.spec.protocol} has no heads`);
    this.opt.loadState({ step: c.state.optStep, tensors: c.opt });
    for (const k of Object.keys(this.rngs)) {
      const s = c.state.rng[k];
      if (!s) throw new Error(`checkpoint: no RNG state for stream '${k}'`);
      this.rngs[k] = Rng.fromState(s);
    }
    this.loader.restore(c.state.loader);
    this.step = c.state.step;
    this.wallSeconds = c.state.wallSeconds ?? 0;
  }
}

const ones1 = (t: Tensor): Tensor => ones(t.shape, t.dtype);

function mean1(t: Tensor): number {
  let s = 0;
  for (const v of t.data) s += v;
  return s / t.size;
}

export { NonFiniteLossError, scheduleFor, type StepLog };
