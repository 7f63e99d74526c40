// AutoGuidance for RAE's stage 2 (Karras et al., "Guiding a Diffusion Model with a Bad Version of
// Itself", arXiv 2406.02507; RAE: arXiv 2510.11690 §5, github.com/bytetriper/RAE
// configs/stage2/sampling/ImageNet256/DiTDHXL-DINOv2-B_AG.yaml and DDT.py forward_with_autoguidance):
//   v = v_weak + w·(v − v_weak)
// with a weaker DiT^DH of the same latent space (RAE: DiT^DH-S trained 14 epochs), w = 1.42; inside
// the sample section's guidance interval [guidance_low, guidance_high] (diffactor time), else the
// main model alone. w = 1 is the main model exactly (methods-b §5 (d)).
// The weak model is another run's checkpoint (its EMA weights and its dit_dh head sizes), read here
// from the file's safetensors and metadata (a diffactor checkpoint or exported weights).
// Not here: the sampler (model.ts drawOwn, diffusion/odeSampler.ts).
import { existsSync } from 'node:fs';
import { readSafetensors } from '../../io/safetensors.ts';
import { add, mul, sub } from '../../autograd/index.ts';
import { parseSiTConfig, type SiTConfig } from '../../models/config.ts';
import type { ModelFn } from '../../diffusion/types.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { DiTDH, createDiTDH } from './model.ts';

/** v_weak + w·(v − v_weak) inside [lo, hi] (the model's time), else v; w = 1 returns v itself. */
export function autoGuided(main: ModelFn, weak: ModelFn, scale: number, interval: readonly [number, number] = [0, 1]): ModelFn {
  if (!(scale >= 1)) throw new Error(`dit_dh.autoguidance_scale must be ≥ 1, got ${scale}`);
  return (x: Tensor, t: Tensor, y: Tensor): Tensor => {
    const v = main(x, t, y);
    const tt = t.data[0];
    if (scale === 1 || tt < interval[0] || tt > interval[1]) return v;
    const w = weak(x, t, y);
    return add(w, mul(sub(v, w), scale));
  };
}

/** The weak model of dit_dh.autoguidance (a checkpoint file): a DiT^DH of the same latent (channels, side, classes), EMA weights, eval mode. */
export function loadWeakModel(file: string, config: SiTConfig): DiTDH {
  const where = `dit_dh.autoguidance ${file}`;
  if (!existsSync(file)) throw new Error(`${where}: not found (a dit-dh run's checkpoint.safetensors)`);
  const { tensors, metadata } = readSafetensors(file);
  if (!metadata.config || !metadata.spec) throw new Error(`${where}: not a diffactor checkpoint (no config or spec in its metadata)`);
  const c = parseSiTConfig(metadata.config);
  const spec = JSON.parse(metadata.spec) as { methods?: string[]; dit_dh?: { head_width: number; head_depth: number; head_heads: number } };
  if (!spec.methods?.includes('dit-dh') || !spec.dit_dh) throw new Error(`${where}: a run of [${(spec.methods ?? []).join(', ')}], not dit-dh`);
  for (const k of ['inChannels', 'inputSize', 'numClasses'] as const) {
    if (c[k] !== config[k]) throw new Error(`${where}: its model has ${k} ${c[k]}, this run's ${config[k]}: the weak model must work in the same latent space`);
  }
  const exported = metadata.format === 'diffactor-weights/1';
  const weights = new Map<string, Tensor>();
  for (const [k, t] of tensors) {
    if (exported) { if (!k.startsWith('vae.')) weights.set(k, t); } else if (k.startsWith('ema.')) weights.set(k.slice(4), t);
  }
  const m = createDiTDH(c, { width: spec.dit_dh.head_width, depth: spec.dit_dh.head_depth, heads: spec.dit_dh.head_heads }, 0);
  m.loadStateDict(weights);
  m.eval();
  for (const p of m.parameters()) p.requiresGrad = false;
  return m;
}
