// SVG's diffusion transformer (Shi et al., "Latent Diffusion Model without Variational Autoencoder",
// arXiv 2510.15301; official code github.com/shiml20/SVG models/models_SVG.py (DiT with qk_norm),
// rectified_flow/rectified_flow.py; methods-b §6 "Diffusion"): the SiT/DiT of models/sit.ts with
// q/k-norm in every block (SiTOptions.qkNorm: LayerNorm over the head dim on q and k), patch 1 on
// the latent's token grid. SVG's time runs the other way (t = 1 data): z_t = (1 − t)·ε + t·x and the
// network predicts x − ε. The conversion happens here, at the boundary, so the network sees SVG's
// times (its weights mean what the official ones mean) and everything outside sees diffactor's
// (t = 1 noise, x_t = (1 − t)·x + t·ε, velocity ε − x):
//   forward(x_t, t, y) = −net(x_t, 1 − t, y)
// Sampling (drawOwn): Euler or Heun from noise on SVG's grid τ_s(linspace(0, 1)) (s = sample_shift,
// 0.15), which in diffactor's time is 1 − τ_s(i/N) = τ_{1/s}(1 − i/N): odeGrid with shift 1/s.
// Not here: the training-time shift (index.ts), the latent space (methods/svg/latent.ts).
import { Tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { add, mul } from '../../autograd/ops/index.ts';
import { SiT, type SiTForwardOptions, type SiTOutput } from '../../models/sit.ts';
import type { SiTConfig } from '../../models/config.ts';
import { sampleOde } from '../../diffusion/odeSampler.ts';
import type { Guidance } from '../../diffusion/guidance.ts';
import type { ModelFn } from '../../diffusion/types.ts';
import type { OwnSampleSettings } from '../method.ts';

/** SVG's time of diffactor times t: 1 − t. */
export function svgTimes(t: Tensor | ArrayLike<number>): Float64Array {
  const v = t instanceof Tensor ? t.data : t, out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = 1 - v[i];
  return out;
}

export class SvgDiT extends SiT {
  /** SVG's shift of training times (0.4) and of the sampling grid (0.15), in SVG's time (set by the method). */
  trainShift = 1;
  sampleShift = 1;

  constructor(config: SiTConfig, rng: Rng) {
    super(config, rng, { qkNorm: true });
    if (this.config.patchSize !== 1) throw new Error(`SVG's DiT embeds each latent token by itself: model.patch_size must be 1, got ${this.config.patchSize}`);
    if (this.config.learnSigma) throw new Error('SVG\'s DiT predicts a velocity (the official learn_sigma half is ignored): model.learn_sigma must be false');
  }

  /** x_t (B, C, g, g) at diffactor times t → the velocity ε − x (diffactor's), from the network's x − ε at SVG time 1 − t. */
  override forward(x: Tensor, t: Tensor | ArrayLike<number>, y: Tensor | ArrayLike<number>, opts: SiTForwardOptions = {}): SiTOutput {
    const o = super.forward(x, svgTimes(t), y, opts);
    return { ...o, out: mul(o.out, -1) };
  }

  /** The hidden state after `block` at diffactor time t (the network at SVG time 1 − t), labels as given (PartialForward). */
  hiddenAfter(x: Tensor, t: ArrayLike<number>, labels: ArrayLike<number>, block: number): Tensor {
    if (!Number.isInteger(block) || block < 1 || block > this.config.depth) throw new Error(`SVG's DiT: block ${block} is not in 1..${this.config.depth}`);
    const y = this.y_embedder.dropLabels(labels, { training: false });
    let h = add(this.x_embedder.forward(x), this.pos_embed); // (B, T, D)
    const cond = add(this.t_embedder.forward(svgTimes(t)), this.y_embedder.forward(y)); // (B, D)
    for (let i = 0; i < block; i++) h = this.blocks.items[i].forward(h, cond); // (B, T, D)
    return h;
  }

  /** OwnSampler: Euler and Heun on SVG's shifted grid. */
  ownsSampler(sampler: string): boolean {
    return sampler === 'euler' || sampler === 'heun';
  }

  /** The ODE from noise (diffactor t = 1) to data on τ_{1/s}(1 − i/N) = 1 − τ_s(i/N), with constant CFG (SVG's default mode). */
  drawOwn(noise: Tensor, y: Tensor, s: OwnSampleSettings, onStep?: (i: number, n: number) => void): Tensor {
    const fn: ModelFn = (x, t, yy) => this.forward(x, t.data, yy.data).out;
    const guidance: Guidance | undefined = s.cfg > 1 ? { scale: s.cfg, nullClass: this.config.numClasses, interval: [s.guidance_low, s.guidance_high] } : undefined;
    return sampleOde(fn, noise, y, { steps: s.steps, heun: s.sampler === 'heun', shift: 1 / this.sampleShift, guidance, onStep });
  }
}

/** A fresh model from a config and a seed. */
export function createSvgDiT(config: SiTConfig, seed: number): SvgDiT {
  return new SvgDiT(config, new Rng(seed).child('model'));
}
