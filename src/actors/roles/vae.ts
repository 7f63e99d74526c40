// The VAE actor of REPA-E (methods-b §2): the jointly trained VAE and its own optimiser. `encode`
// runs the posterior (ξ from its own 'posterior' stream), the decoder and the regulariser
// l1·L1 + kl·KL under the step's tape and sends out z; `update` receives ∂(c·L_REPA)/∂z from the
// Student — the alignment loss's gradient, the only one that ever reaches it: the diffusion loss
// reads z detached and sends nothing (stop-gradient is the absence of a message) — runs one
// backward seeded with (regulariser, 1) and (z, g), clips over its own parameters and steps AdamW.
// `decode` turns the EMA teacher's BN-normalised latent samples into images.
import { backward, withTape } from '../../autograd/tape.ts';
import { Rng } from '../../tensor/rng.ts';
import { ones, type Tensor } from '../../tensor/tensor.ts';
import { clipGradNorm } from '../../optim/clip.ts';
import { BatchNorm2d } from '../../nn/index.ts';
import { decodeLatentSamples, vaeRegLoss } from '../../methods/repa-e/pieces.ts';
import { buildVae, section } from '../../train/methodParts.ts';
import type { VAEConfig } from '../../models/vae.ts';
import type { MessageContext } from '../core.ts';
import { RoleOptimizer, copyDict, toMap, type RoleInit, type TensorDict } from './common.ts';

export function vaeRole(init: RoleInit & { vaeConfig: VAEConfig }) {
  const { spec } = init;
  const s = section(spec, 'repa_e');
  const vae = buildVae(spec, init.vaeConfig);
  const params = vae.namedParameters();
  const opt = new RoleOptimizer(params, { ...spec, train: { ...spec.train, lr: s.vae_lr } });
  let posterior = new Rng(spec.seed).child('posterior');

  return {
    encode(b: { x: Tensor }, ctx: MessageContext): { z: Tensor; l1: number; kl: number } {
      return withTape(ctx.tape(), () => {
        const post = vae.forward(b.x, posterior); // z (B, L, h, w), recon (B, C, H, W)
        const reg = vaeRegLoss(b.x, post.recon, post, { l1: s.l1_weight, kl: s.kl_weight });
        ctx.scratch().set('z', post.z);
        ctx.scratch().set('reg', reg.loss);
        return { z: post.z, l1: reg.l1, kl: reg.kl };
      });
    },

    /** g = ∂(vae_align_coeff·L_REPA)/∂z from the Student; clip over the VAE's own parameters. */
    update(b: { grad: Tensor; lrFactor: number }, ctx: MessageContext): { gradNorm: number } {
      const z = ctx.scratch().get('z') as Tensor | undefined, reg = ctx.scratch().get('reg') as Tensor;
      if (!z) throw new Error(`update for step ${ctx.step} without its encode`);
      backward([[reg, ones(reg.shape, reg.dtype)], [z, b.grad]], { tape: ctx.tape() });
      const gradNorm = clipGradNorm(params, spec.train.grad_clip);
      if (!Number.isFinite(gradNorm)) throw new Error(`the VAE's gradient norm became ${gradNorm} at step ${ctx.step}; no update was made`);
      opt.opt.step(b.lrFactor);
      opt.opt.zeroGrad();
      return { gradNorm };
    },

    /** Images from BN-normalised latents, de-normalised with the BN buffers given (the EMA teacher's). */
    decode(b: { latents: Float32Array; n: number; side: number; bn: { running_mean: Tensor; running_var: Tensor; eps: number } }) {
      const bn = new BatchNorm2d(b.bn.running_mean.size, { eps: b.bn.eps, affine: false });
      bn.running_mean!.data.set(b.bn.running_mean.data);
      bn.running_var!.data.set(b.bn.running_var.data);
      return { images: decodeLatentSamples(vae, bn.eval(), b.latents, b.n, b.side), channels: vae.config.outChannels };
    },

    save() {
      return { vae: copyDict(vae.stateDict()), opt: opt.save(), rng: { posterior: posterior.state() } };
    },

    load(b: { vae: TensorDict; opt: { step: number; tensors: TensorDict }; rng: { posterior: ReturnType<Rng['state']> } }) {
      vae.loadStateDict(toMap(b.vae));
      opt.load(b.opt);
      posterior = Rng.fromState(b.rng.posterior);
      return null;
    },
  };
}
