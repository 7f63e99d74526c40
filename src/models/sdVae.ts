// Loading diffusers AutoencoderKL safetensors (SD-VAE: diffusion_pytorch_model.safetensors) into
// the VAE (vae.ts), strictly. Files written before diffusers 0.15 name the mid-block attention
// query/key/value/proj_attn; they are renamed to to_q/to_k/to_v/to_out.0 (1x1-conv shaped
// weights are flattened), as diffusers does on load. The config comes from the shapes; the group
// count and the latent scaling are not in the shapes: options, then metadata, then SD's 32 and
// 0.18215. Not here: the original CompVis/LDM layout (encoder.down.N.block.M...), SDXL/FLUX VAEs'
// other scaling (pass scalingFactor / shiftFactor).
import { tensor, type Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { parseVAEConfig, VAE, type VAEConfig } from './vae.ts';

export interface LoadSdVaeOptions {
  normNumGroups?: number;
  scalingFactor?: number;
  shiftFactor?: number;
}

const DEPRECATED: [RegExp, string][] = [
  [/\.attentions\.(\d+)\.query\./, '.attentions.$1.to_q.'],
  [/\.attentions\.(\d+)\.key\./, '.attentions.$1.to_k.'],
  [/\.attentions\.(\d+)\.value\./, '.attentions.$1.to_v.'],
  [/\.attentions\.(\d+)\.proj_attn\./, '.attentions.$1.to_out.0.'],
];

/** Rename deprecated attention keys; (C, C, 1, 1) attention weights become (C, C). */
export function normalizeSdVaeKeys(src: Map<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, t] of src) {
    let name = k;
    for (const [re, to] of DEPRECATED) name = name.replace(re, to);
    const attnWeight = /\.attentions\.\d+\.(to_q|to_k|to_v|to_out\.0)\.weight$/.test(name);
    out.set(name, attnWeight && t.ndim === 4 ? tensor(t.data, t.shape.slice(0, 2)) : t);
  }
  return out;
}

function need(sd: Map<string, Tensor>, key: string): Tensor {
  const t = sd.get(key);
  if (!t) throw new Error(`loadSdVae: no '${key}' in the checkpoint: not a diffusers AutoencoderKL layout`);
  return t;
}

export function inferSdVaeConfig(sd: Map<string, Tensor>, metadata: Record<string, string> = {}, opts: LoadSdVaeOptions = {}): VAEConfig {
  const blockOut: number[] = [];
  while (sd.has(`encoder.down_blocks.${blockOut.length}.resnets.0.conv2.weight`)) {
    blockOut.push(sd.get(`encoder.down_blocks.${blockOut.length}.resnets.0.conv2.weight`)!.shape[0]);
  }
  if (blockOut.length === 0) need(sd, 'encoder.down_blocks.0.resnets.0.conv2.weight');
  let layers = 0;
  while (sd.has(`encoder.down_blocks.0.resnets.${layers}.conv1.weight`)) layers++;
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  return parseVAEConfig({
    inChannels: need(sd, 'encoder.conv_in.weight').shape[1],
    outChannels: need(sd, 'decoder.conv_out.weight').shape[0],
    latentChannels: need(sd, 'decoder.conv_in.weight').shape[1],
    blockOutChannels: blockOut,
    layersPerBlock: layers,
    normNumGroups: opts.normNumGroups ?? num(metadata.norm_num_groups) ?? 32,
    scalingFactor: opts.scalingFactor ?? num(metadata.scaling_factor) ?? 0.18215,
    shiftFactor: opts.shiftFactor ?? num(metadata.shift_factor) ?? 0,
    useQuantConv: sd.has('quant_conv.weight'),
    usePostQuantConv: sd.has('post_quant_conv.weight'),
  });
}

/** Read a diffusers AutoencoderKL safetensors file into a VAE in eval mode. */
export function loadSdVae(path: string, opts: LoadSdVaeOptions = {}): VAE {
  const { tensors, metadata } = readSafetensors(path);
  const sd = normalizeSdVaeKeys(tensors);
  const config = inferSdVaeConfig(sd, metadata, opts);
  const model = new VAE(config, new Rng(0));
  try {
    model.loadStateDict(sd, true);
  } catch (e) {
    throw new Error(`loadSdVae ${path} (inferred blocks [${config.blockOutChannels.join(', ')}] x ${config.layersPerBlock}): ${(e as Error).message}`);
  }
  return model.eval();
}

/** Write a VAE with diffusers' key names; metadata carries what the shapes do not. */
export function saveSdVae(model: VAE, path: string): void {
  const c = model.config;
  writeSafetensors(path, model.stateDict(), {
    format: 'diffusers-autoencoderkl', norm_num_groups: String(c.normNumGroups),
    scaling_factor: String(c.scalingFactor), shift_factor: String(c.shiftFactor), vae_config: JSON.stringify(c),
  });
}
