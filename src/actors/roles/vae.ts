// The VAE actor: a VAE trained with the backbone (a method's JointVae, e.g. REPA-E) and its own
// optimiser. `encode` runs the posterior (ξ from the method's stream), the decoder and the method's
// regulariser under the step's tape and sends out z; `update` receives ∂(c·L_align)/∂z from the
// Student — the alignment loss's gradient, the only one that ever reaches it: the diffusion loss
// reads z detached and sends nothing (stop-gradient is the absence of a message) — runs one
// backward seeded with (regulariser, 1) and (z, g), clips over its own parameters and steps AdamW,
// then lets the method's loss step its adversary (JointVae.afterUpdate: REPA-E's discriminator, on
// x and x̂ detached, so nothing of its loss reaches the VAE). The modules of the VAE's loss
// (JointVae.lossParts: a frozen perceptual net, a discriminator and its AdamW) live here, built
// for the run's dataset (--data, else the spec's); the discriminator's state is saved and loaded
// with the VAE's. The hooks run at the reference Trainer's points, so the order of every
// BatchNorm update and random draw is the same. `decode` turns the EMA teacher's latent samples
// into images, as the method decodes them. A frozen joint VAE (learning rate 0: REPA-E's control)
// only encodes: the posterior sample without a tape, no decoder, no loss, and no `update` is sent.
import { backward, noGrad, withTape } from '../../autograd/tape.ts';
import { Rng } from '../../tensor/rng.ts';
import { ones, type Tensor } from '../../tensor/tensor.ts';
import { clipGradNorm } from '../../optim/clip.ts';
import { buildVae, jointVae, vaeFrozen } from '../../build/parts.ts';
import { checkDiscState } from '../../build/checkpoint.ts';
import type { VAEConfig } from '../../models/vae.ts';
import type { MessageContext } from '../core.ts';
import type { VaeLossParts } from '../../methods/method.ts';
import { RoleOptimizer, atTrainPrecision, copyDict, toMap, type RoleInit, type TensorDict } from './common.ts';

export function vaeRole(init: RoleInit & { vaeConfig: VAEConfig }) {
  const { spec } = init;
  const j = jointVae(spec);
  if (!j) throw new Error(`${spec.protocol} trains no VAE`);
  const { m, vae: hooks } = j;
  const vae = buildVae(spec, init.vaeConfig);
  const params = vae.namedParameters();
  const opt = new RoleOptimizer(params, { ...spec, train: { ...spec.train, lr: hooks.lr(m.s) } });
  let posterior = new Rng(spec.seed).child(hooks.stream);
  const parts: VaeLossParts = hooks.lossParts?.(m.s, {
    dataset: init.data ?? spec.data.dataset, channels: init.vaeConfig.inChannels, seed: spec.seed, train: spec.train,
  }) ?? {};
  const disc = parts.disc ?? null;
  const frozen = vaeFrozen(j);

  return atTrainPrecision(spec, {
    encode(b: { x: Tensor }, ctx: MessageContext): { z: Tensor; regLoss: number; terms: Record<string, number> } {
      if (frozen) return { z: noGrad(() => vae.encode(b.x, posterior).z), regLoss: 0, terms: {} };
      return withTape(ctx.tape(), () => {
        const post = vae.forward(b.x, posterior); // z (B, L, h, w), recon (B, C, H, W)
        const reg = hooks.regularizer(m.s, b.x, post.recon, post, parts, ctx.step!);
        ctx.scratch().set('z', post.z);
        ctx.scratch().set('regularizer', reg.loss);
        ctx.scratch().set('x', b.x);
        ctx.scratch().set('recon', post.recon);
        return { z: post.z, regLoss: reg.loss.item(), terms: reg.terms };
      });
    },

    /** g = ∂(c·L_align)/∂z from the Student; clip over the VAE's own parameters; then the adversary's step. */
    update(b: { grad: Tensor; lrFactor: number }, ctx: MessageContext): { gradNorm: number; terms: Record<string, number> } {
      const z = ctx.scratch().get('z') as Tensor | undefined, reg = ctx.scratch().get('regularizer') as Tensor;
      if (frozen) throw new Error(`update for step ${ctx.step}: the VAE is frozen (learning rate 0) and takes no step`);
      if (!z) throw new Error(`update for step ${ctx.step} without its encode`);
      backward([[reg, ones(reg.shape, reg.dtype)], [z, b.grad]], { tape: ctx.tape() });
      const gradNorm = clipGradNorm(params, spec.train.grad_clip);
      if (!Number.isFinite(gradNorm)) throw new Error(`the VAE's gradient norm became ${gradNorm} at step ${ctx.step}; no update was made`);
      opt.opt.step(b.lrFactor);
      opt.opt.zeroGrad();
      const s = ctx.scratch();
      const terms = hooks.afterUpdate?.(m.s, parts, s.get('x') as Tensor, s.get('recon') as Tensor, ctx.step!, b.lrFactor) ?? {};
      return { gradNorm, terms };
    },

    /** Images from latent samples, decoded with the EMA teacher's weights (e.g. its BN buffers). */
    decode(b: { latents: Float32Array; n: number; side: number; ema: TensorDict }) {
      return { images: hooks.decode(m.s, vae, toMap(b.ema), b.latents, b.n, b.side), channels: vae.config.outChannels };
    },

    save() {
      return {
        vae: copyDict(vae.stateDict()), opt: opt.save(), rng: { [hooks.stream]: posterior.state() },
        disc: disc && { weights: copyDict(disc.module.stateDict()), opt: { step: disc.opt.state().step, tensors: copyDict(disc.opt.state().tensors) } },
      };
    },

    /** `disc`: the discriminator's weights and AdamW state, required exactly when the VAE's loss has one. */
    load(b: { vae: TensorDict; opt: { step: number; tensors: TensorDict }; rng: Record<string, ReturnType<Rng['state']>>; disc?: { weights: TensorDict; opt: { step?: number; tensors: TensorDict } } | null }) {
      checkDiscState({ disc: b.disc ? toMap(b.disc.weights) : undefined, state: { discOptStep: b.disc?.opt.step } }, !!disc, spec.protocol);
      vae.loadStateDict(toMap(b.vae));
      opt.load(b.opt);
      posterior = Rng.fromState(b.rng[hooks.stream]);
      if (disc && b.disc) {
        disc.module.loadStateDict(toMap(b.disc.weights));
        disc.opt.loadState({ step: b.disc.opt.step!, tensors: toMap(b.disc.opt.tensors) });
      }
      return null;
    },
  });
}
