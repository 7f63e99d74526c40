// The VAE actor: a VAE trained with the backbone (a method's JointVae, e.g. REPA-E) and its own
// optimiser. `encode` runs the posterior (ξ from the method's stream), the decoder and the method's
// regulariser under the step's tape and sends out z; `update` receives ∂(c·L_align)/∂z from the
// Student — the alignment loss's gradient, the only one that ever reaches it: the diffusion loss
// reads z detached and sends nothing (stop-gradient is the absence of a message) — runs one
// backward seeded with (regulariser, 1) and (z, g), clips over its own parameters and steps AdamW.
// `decode` turns the EMA teacher's latent samples into images, as the method decodes them.
import { backward, withTape } from '../../autograd/tape.ts';
import { Rng } from '../../tensor/rng.ts';
import { ones, type Tensor } from '../../tensor/tensor.ts';
import { clipGradNorm } from '../../optim/clip.ts';
import { buildVae, jointVae } from '../../build/parts.ts';
import type { VAEConfig } from '../../models/vae.ts';
import type { MessageContext } from '../core.ts';
import { RoleOptimizer, copyDict, toMap, type RoleInit, type TensorDict } from './common.ts';

export function vaeRole(init: RoleInit & { vaeConfig: VAEConfig }) {
  const { spec } = init;
  const j = jointVae(spec);
  if (!j) throw new Error(`${spec.protocol} trains no VAE`);
  const { m, vae: hooks } = j;
  const vae = buildVae(spec, init.vaeConfig);
  const params = vae.namedParameters();
  const opt = new RoleOptimizer(params, { ...spec, train: { ...spec.train, lr: hooks.lr(m.s) } });
  let posterior = new Rng(spec.seed).child(hooks.stream);

  return {
    encode(b: { x: Tensor }, ctx: MessageContext): { z: Tensor; regLoss: number; terms: Record<string, number> } {
      return withTape(ctx.tape(), () => {
        const post = vae.forward(b.x, posterior); // z (B, L, h, w), recon (B, C, H, W)
        const reg = hooks.regularizer(m.s, b.x, post.recon, post);
        ctx.scratch().set('z', post.z);
        ctx.scratch().set('regularizer', reg.loss);
        return { z: post.z, regLoss: reg.loss.item(), terms: reg.terms };
      });
    },

    /** g = ∂(c·L_align)/∂z from the Student; clip over the VAE's own parameters. */
    update(b: { grad: Tensor; lrFactor: number }, ctx: MessageContext): { gradNorm: number } {
      const z = ctx.scratch().get('z') as Tensor | undefined, reg = ctx.scratch().get('regularizer') as Tensor;
      if (!z) throw new Error(`update for step ${ctx.step} without its encode`);
      backward([[reg, ones(reg.shape, reg.dtype)], [z, b.grad]], { tape: ctx.tape() });
      const gradNorm = clipGradNorm(params, spec.train.grad_clip);
      if (!Number.isFinite(gradNorm)) throw new Error(`the VAE's gradient norm became ${gradNorm} at step ${ctx.step}; no update was made`);
      opt.opt.step(b.lrFactor);
      opt.opt.zeroGrad();
      return { gradNorm };
    },

    /** Images from latent samples, decoded with the EMA teacher's weights (e.g. its BN buffers). */
    decode(b: { latents: Float32Array; n: number; side: number; ema: TensorDict }) {
      return { images: hooks.decode(m.s, vae, toMap(b.ema), b.latents, b.n, b.side), channels: vae.config.outChannels };
    },

    save() {
      return { vae: copyDict(vae.stateDict()), opt: opt.save(), rng: { [hooks.stream]: posterior.state() } };
    },

    load(b: { vae: TensorDict; opt: { step: number; tensors: TensorDict }; rng: Record<string, ReturnType<Rng['state']>> }) {
      vae.loadStateDict(toMap(b.vae));
      opt.load(b.opt);
      posterior = Rng.fromState(b.rng[hooks.stream]);
      return null;
    },
  };
}
