// What a protocol adds to the reference trainer's objects, built from the spec: the backbone (SiT,
// REG's SiT with the class token, or REPA-E's SiT with its latent BatchNorm), the frozen encoder of
// REPA/REG/REPA-E, REPA-E's VAE, and the method's trainable heads — REPA/REG `projectors.0` (models/projector.ts), SRA `ap_head` (methods/sra/loss.ts) — in one
// module whose state_dict names are the official ones, so that the checkpoint's `proj.` prefix
// strips off to REPA's / SRA's own keys. The heads are trained with the model but are not part of
// the EMA (the official EMA copies them too; nothing ever reads them there). Not here: the losses
// (protocolLoss.ts), the loop (trainer.ts).
import { Module, ModuleList } from '../nn/module.ts';
import { Rng } from '../tensor/rng.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { createSiT, type SiT } from '../models/sit.ts';
import { createRegSiT, RegSiT } from '../models/reg.ts';
import { Projector } from '../models/projector.ts';
import { createViT, vitPreset, type ViT } from '../models/vit.ts';
import { loadDinov2 } from '../models/dinov2.ts';
import { gridSize, type SiTConfig } from '../models/config.ts';
import { FrozenEncoder } from '../methods/encoder.ts';
import { SimpleHead } from '../methods/sra/loss.ts';
import { createRepaESiT, initLatentBn, type RepaESiT } from '../methods/repa-e/pieces.ts';
import { createVAE, type VAE, type VAEConfig } from '../models/vae.ts';
import { loadSdVae } from '../models/sdVae.ts';
import type { ImageDataset } from '../data/index.ts';
import type { RunSpec } from '../spec/schema.ts';

export type Backbone = SiT | RegSiT;

/** A method's trainable heads as one Module, under the official names `projectors.<i>`, `ap_head`. */
export class MethodHeads extends Module {
  readonly projectors: ModuleList<Projector> | null;
  readonly ap_head: SimpleHead | null;

  constructor(parts: { projectors?: Projector[]; apHead?: SimpleHead }) {
    super();
    this.projectors = parts.projectors ? this.child('projectors', new ModuleList(parts.projectors)) : null;
    this.ap_head = parts.apHead ? this.child('ap_head', parts.apHead) : null;
  }

  /** REPA/REG's projector for encoder i. */
  projector(i = 0): Projector {
    const p = this.projectors?.items[i];
    if (!p) throw new Error(`MethodHeads: no projector ${i}`);
    return p;
  }

  head(): SimpleHead {
    if (!this.ap_head) throw new Error('MethodHeads: no ap_head');
    return this.ap_head;
  }
}

/** The method section a protocol needs (the schema fills it; this narrows the type). */
export function section<K extends 'repa' | 'sra' | 'reg' | 'repa_e' | 'encoder'>(spec: RunSpec, key: K): NonNullable<RunSpec[K]> {
  const s = spec[key];
  if (s === undefined) throw new Error(`spec '${spec.name}': protocol ${spec.protocol} needs a '${key}' section`);
  return s as NonNullable<RunSpec[K]>;
}

/**
 * The frozen encoder: DINOv2-layout weights from `encoder.checkpoint` (pos_embed resampled to the
 * model's token grid at load, as REPA does), or a ViT of `encoder.preset` initialised from the
 * seed — a placeholder with no learned representation until a trained encoder is given.
 */
export function buildEncoder(spec: RunSpec, data: Pick<ImageDataset, 'channels'>, config: SiTConfig): FrozenEncoder {
  const e = section(spec, 'encoder');
  const grid = gridSize(config);
  let vit: ViT;
  if (e.checkpoint) {
    vit = loadDinov2(e.checkpoint, { resampleTo: grid, ...(e.num_heads !== undefined && { numHeads: e.num_heads }) });
  } else {
    const patch = e.patch_size ?? vitPreset(e.preset).patchSize;
    vit = createViT(vitPreset(e.preset, {
      imgSize: grid * patch, patchSize: patch, inChannels: data.channels,
      ...(e.embed_dim !== undefined && { embedDim: e.embed_dim }),
      ...(e.depth !== undefined && { depth: e.depth }),
      ...(e.num_heads !== undefined && { numHeads: e.num_heads }),
    }), spec.seed);
  }
  return new FrozenEncoder(vit, { normalization: e.normalization, grid });
}

/** REPA-E's SiT with its latent BN (eps, momentum from the spec); running stats at 0 / 1 until initLatentBn. */
function repaeSiT(spec: RunSpec, config: SiTConfig, seed: number): RepaESiT {
  const s = section(spec, 'repa_e');
  return createRepaESiT(config, seed, { eps: s.bn_eps, momentum: s.bn_momentum });
}

/**
 * The trained model (and, with the same call, its EMA twin): REG's SiT for `reg`, REPA-E's SiT
 * for `repa-e` (its BN running stats initialised from the VAE's latent stats, `vae`), else SiT/DiT.
 */
export function buildBackbone(spec: RunSpec, config: SiTConfig, clsDim: number | null, vae?: VAEConfig): Backbone {
  if (spec.protocol === 'repa-e') {
    if (!vae) throw new Error('buildBackbone: repa-e needs the VAE config (its latent stats initialise the BN)');
    const m = repaeSiT(spec, config, spec.seed);
    // The VAE's latent stats: diffusion sees (z − shift)·scale. A seed-initialised VAE (scale 1,
    // shift 0) gives PyTorch's BN defaults, running mean 0 and variance 1.
    initLatentBn(m.bn, { bias: vae.shiftFactor, scale: vae.scalingFactor });
    return m;
  }
  if (spec.protocol !== 'reg') return createSiT(config, spec.seed);
  if (clsDim === null) throw new Error('buildBackbone: reg needs the encoder width');
  return createRegSiT(config, clsDim, spec.seed);
}

/** The model a checkpoint holds (REG's class width read from `cls_projectors2.weight` (D, d_enc)). */
export function backboneForCheckpoint(c: { spec: RunSpec; config: SiTConfig; model: Map<string, Tensor> }): Backbone {
  if (c.spec.protocol === 'repa-e') return repaeSiT(c.spec, c.config, 0);
  if (c.spec.protocol !== 'reg') return createSiT(c.config, 0);
  const w = c.model.get('cls_projectors2.weight');
  if (!w) throw new Error('checkpoint of a reg run without cls_projectors2.weight');
  return createRegSiT(c.config, w.shape[1], 0);
}

/** The method's trainable heads, or null for the baselines. */
export function buildHeads(spec: RunSpec, config: SiTConfig, encoderDim: number | null): MethodHeads | null {
  const rng = new Rng(spec.seed).child('method-heads');
  const d = config.hiddenSize;
  switch (spec.protocol) {
    case 'repa':
    case 'reg':
    case 'repa-e': {
      const s = section(spec, spec.protocol === 'repa-e' ? 'repa_e' : spec.protocol);
      if (encoderDim === null) throw new Error(`buildHeads: ${spec.protocol} needs the encoder width`);
      return new MethodHeads({ projectors: [new Projector(d, s.projector_dim, encoderDim, rng.child('projectors.0'))] });
    }
    case 'sra':
      return new MethodHeads({ apHead: new SimpleHead(d, d, rng.child('ap_head')) });
    default:
      return null;
  }
}

/**
 * REPA-E's VAE (trained): the diffusers AutoencoderKL file `repa_e.vae_checkpoint`, or a VAE of
 * `config` (vaeConfigFor) initialised from the seed (stream Rng(seed).child('vae')).
 */
export function buildVae(spec: RunSpec, config: VAEConfig): VAE {
  const s = section(spec, 'repa_e');
  const vae = s.vae_checkpoint ? loadSdVae(s.vae_checkpoint) : createVAE(config, spec.seed);
  return vae.train();
}
