// U-REPA (Tian et al., "U-REPA: Aligning Diffusion U-Nets to ViTs", NeurIPS 2025, arXiv
// 2503.18414; official code github.com/YuchuanTian/U-REPA, derived from github.com/sihyun-yu/REPA):
// REPA on a U-shaped SiT (SiT↓, model.ts) aligned at its middle, downsampled stage:
//   L = L_diff + λ · (L_tok + w · L_man)
// u = up×2(h_φ(h_mid)) — the projector MLP first, then the upsampling to the encoder's grid —
// L_tok = −mean cos(u, y*), L_man the manifold loss over similarity matrices (loss.ts), y* the
// frozen encoder's patch tokens. Logged as `proj` (L_tok, weight λ) and `manifold` (L_man, weight λ·w).
// Time convention: U-REPA's code is REPA's (x_t = (1−t)·x + t·ε, t = 0 data, target ε − x), which
// is diffactor's; the boundary conversion is the identity (test/methods/urepa.test.ts checks it).
// The backbone replaces the SiT everywhere (training, EMA, sampling, evaluation): `backbone` below.
// Parts the paper leaves open and that are OUR choices (the official code could not be read):
// the U layout (2×2 average-pool down, nearest up, U-ViT long skips fused by Linear(2D → D),
// model.ts); the manifold loss's exact form and its sample/token switch, no margin (loss.ts); the
// upsampling of u bilinear by default (the paper stresses MLP-then-upsample, which only matters
// for a non-nearest mode); aligning the output of the LAST middle block by default.
import { z } from 'zod';
import { flowTrainingPair } from '../../diffusion/index.ts';
import { sitPreset } from '../../models/presets.ts';
import type { MethodDefinition, SpecView } from '../method.ts';
import { imageTokens } from '../flowForward.ts';
import { ProjectorHeads, singleProjector } from '../projectorHeads.ts';
import { USiT, createUSiT, type UShape } from './model.ts';
import { UREPA_MANIFOLD_COEFF, UREPA_PROJ_COEFF, alignedTokens, manifoldLoss, uRepaTokenLoss } from './loss.ts';

const positiveInt = z.number().int().positive();

export const URepaSection = z.strictObject({
  /** SiT blocks on the full token grid on each side of the middle (ours; model.depth = 2·stage_blocks + mid_blocks). */
  stage_blocks: positiveInt.default(2),
  /** SiT blocks on the 2× downsampled grid (the small-scale note: 2–4). */
  mid_blocks: positiveInt.default(2),
  /** 1-based block whose output is aligned; null: the last middle block (the paper aligns the middle stage). */
  align_block: positiveInt.nullable().default(null),
  /** λ (REPA's `--proj-coeff` 0.5; re-implementations quote 0.5 as U-REPA's default). */
  proj_coeff: z.number().min(0).default(UREPA_PROJ_COEFF),
  /** w, the manifold loss's weight inside λ·(L_tok + w·L_man) (3.0 as quoted for the paper). */
  manifold_coeff: z.number().min(0).default(UREPA_MANIFOLD_COEFF),
  /** Which similarity structure L_man matches: between samples (B×B, default) or between tokens (T×T per sample). */
  manifold: z.enum(['sample', 'token']).default('sample'),
  /** How the projected middle tokens reach the encoder's grid (after the MLP). */
  upsample: z.enum(['bilinear', 'nearest']).default('bilinear'),
  /** Hidden width of the projector MLP (REPA's build_mlp, 2048). */
  projector_dim: positiveInt.default(2048),
});
export type URepaSection = z.infer<typeof URepaSection>;

const shapeOf = (s: URepaSection): UShape => ({ stage: s.stage_blocks, mid: s.mid_blocks });
const alignBlock = (s: URepaSection): number => s.align_block ?? s.stage_blocks + s.mid_blocks;

function asUSiT(model: unknown): USiT {
  if (!(model instanceof USiT)) throw new Error('u-repa: expected the U-shaped SiT backbone');
  return model;
}

function check(s: URepaSection, spec: SpecView): void {
  const k = alignBlock(s), lo = s.stage_blocks + 1, hi = s.stage_blocks + s.mid_blocks;
  if (k < lo || k > hi) throw new Error(`u_repa.align_block ${k} is not a middle block (${lo}..${hi} with stage_blocks ${s.stage_blocks}, mid_blocks ${s.mid_blocks})`);
  const m = spec.model as { preset?: string; depth?: number };
  let depth = m.depth;
  if (depth === undefined && m.preset) {
    try { depth = sitPreset(m.preset.replace(/^DiT-/, 'SiT-')).depth; } catch { depth = undefined; }
  }
  if (depth !== undefined && depth !== 2 * s.stage_blocks + s.mid_blocks) {
    throw new Error(`model.depth is ${depth} but u_repa needs 2·u_repa.stage_blocks + u_repa.mid_blocks = ${2 * s.stage_blocks + s.mid_blocks}`);
  }
}

export const uRepa: MethodDefinition<URepaSection> = {
  name: 'u-repa',
  title: 'U-REPA',
  cite: 'Tian et al., U-REPA, NeurIPS 2025 — arXiv 2503.18414, github.com/YuchuanTian/U-REPA (built on github.com/sihyun-yu/REPA)',
  section: { key: 'u_repa', schema: URepaSection },
  reads: ['encoder'],
  changes: ['backbone'],
  check,
  blocks: (s) => ({ 'u_repa.align_block': alignBlock(s) }),
  heads: (s, c) => singleProjector(c, s.projector_dim, 'u-repa'),
  taps: (s) => [alignBlock(s)],
  backbone: {
    build: (s, c, seed) => createUSiT(c.config, shapeOf(s), seed),
    fromWeights: (s, c, weights) => {
      const skips = [...weights.keys()].filter((k) => /^skips\.\d+\.weight$/.test(k)).length;
      if (skips !== s.stage_blocks) {
        throw new Error(`u-repa: the weights hold ${skips} skip fusions (skips.N.weight) but u_repa.stage_blocks is ${s.stage_blocks}`);
      }
      return createUSiT(c.config, shapeOf(s), 0);
    },
    // REPA's flow step on the U-shaped SiT: diffactor's convention is U-REPA's (see the header).
    forward: (_s, model, b, path, dropout) => {
      const m = asUSiT(model);
      const { xt, target } = flowTrainingPair(path, b.input, b.eps, b.t);
      const o = m.forward(xt, b.t, b.y, { rng: dropout, taps: b.taps });
      return { out: o.out, target, hidden: o.hidden, labels: o.labels, terms: {} };
    },
  },
  alignTerms: [{
    name: 'proj',
    tap: alignBlock,
    weight: (s) => s.proj_coeff,
    loss: (s, heads, h, tg) => uRepaTokenLoss(alignedTokens((heads as ProjectorHeads).projector(), imageTokens(h, tg.prefixTokens), s.upsample), tg.feats!.patch),
  }, {
    name: 'manifold',
    tap: alignBlock,
    weight: (s) => s.proj_coeff * s.manifold_coeff,
    loss: (s, heads, h, tg) => manifoldLoss(alignedTokens((heads as ProjectorHeads).projector(), imageTokens(h, tg.prefixTokens), s.upsample), tg.feats!.patch, s.manifold),
  }],
};
