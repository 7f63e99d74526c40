// Writes specs/paper/: the registered methods at the papers' scale (SiT-B/2, L/2, XL/2 on 256×256
// ImageNet as 32×32×4 SD-VAE latents, DINOv2-B/14 where a method reads an encoder, batch 256, AdamW
// 1e-4, EMA 0.9999), for `diffactor simulate` (docs/simulate.md). The settings are the papers' and
// official repositories' (../shared/methods/methods-a.md summarises them; each spec's header says
// where a value comes from or that the paper does not state it). Regenerate with
//   npx tsx scripts/paper-specs.ts
// These specs are not trainable here: `imagenet-latents` is no dataset this project opens.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { methodByName } from '../src/methods/registry.ts';

type Size = 'B' | 'L' | 'XL';
const SIZES: Size[] = ['B', 'L', 'XL'];
const out = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'specs', 'paper');

/** REPA / REG / REPA-E: the projector reads block 4 of SiT-B, 8 of L and XL (REPA README, REG train.sh). */
const encoderDepth = (s: Size) => (s === 'B' ? 4 : 8);

interface PaperSpec { method: string; family?: 'DiT'; pixels?: boolean; model?: (s: Size) => Record<string, unknown>; diffusion?: Record<string, unknown>; section?: (s: Size) => { key: string; body: Record<string, unknown>; note: string } }

const ENCODER = '  checkpoint: null           # shape-only: DINOv2-B/14 (dinov2_vitb14) built from its preset\n  preset: dinov2_vitb14\n';

const SPECS: PaperSpec[] = [
  { method: 'sit-baseline' },
  { method: 'dit-baseline', family: 'DiT' },
  {
    method: 'repa',
    section: (s) => ({ key: 'repa', body: { encoder_depth: encoderDepth(s), proj_coeff: 0.5, projector_dim: 2048 }, note: 'encoder_depth 4 (B) / 8 (L, XL), λ 0.5, projector 2048 (REPA README and train.py)' }),
  },
  {
    method: 'sra',
    section: (s) => ({
      key: 'sra', body: { student_block: s === 'B' ? 4 : 8, teacher_block: s === 'B' ? 8 : 20 },
      note: s === 'L' ? 'blocks 8 → 20: the L/2 pair is not stated (code or paper); XL\'s is used' : `blocks ${s === 'B' ? '4 → 8 (code default, 12-block B)' : '8 → 20 (README, SiT-XL/2)'}`,
    }),
  },
  {
    method: 'reg',
    section: (s) => ({ key: 'reg', body: { encoder_depth: encoderDepth(s), proj_coeff: 0.5, projector_dim: 2048, cls_coeff: 0.03 }, note: 'encoder_depth 4 (B) / 8 (L, XL), λ 0.5, cls 0.03 (REG train.sh)' }),
  },
  {
    method: 'repa-e', pixels: true,
    section: (s) => ({
      key: 'repa_e', body: { encoder_depth: encoderDepth(s), projector_dim: 2048, proj_coeff: 0.5, vae: 'sd', latent_channels: 4, perceptual_weight: 0 },
      note: 'SD-VAE (f8, 4 channels) trained end to end on 256² pixels; encoder_depth 8 (XL); perceptual_weight 0: no LPIPS network ships, so its VGG cost is left out',
    }),
  },
  {
    method: 'layersync',
    section: (s) => ({ key: 'layersync', body: { student_block: s === 'B' ? 4 : 8, teacher_block: s === 'B' ? 8 : 16, reg_weight: 0.2 }, note: s === 'XL' ? 'pair 8 → 16 (README, XL/2), λ 0.2' : `pair ${s === 'B' ? '4 → 8' : '8 → 16'}: not stated for ${s}/2 (XL's proportion), λ 0.2` }),
  },
  {
    method: 'deepflow',
    // DeepFlow-XL/2 is 24 blocks of width 1152 (script/xlarge/train.sh); B 12 blocks. L/2 is not stated: 24 blocks as XL.
    model: (s) => (s === 'B' ? {} : { depth: 24 }),
    diffusion: { time_sampling: 'logit-normal' },
    section: (s) => ({
      key: 'deepflow', body: s === 'B' ? { branch_blocks: '[6]', branch_weights: '[0.2]' } : { branch_blocks: '[8, 16]', branch_weights: '[0.2, 0.2]' },
      note: s === 'B' ? 'depth 12, df_idxs [6], weights 0.2/1.0 (script/base/train.sh); lognormal times' : s === 'XL' ? 'depth 24, df_idxs [8, 16], weights 0.2/0.2/1.0 (script/xlarge/train.sh); lognormal times' : 'not stated for L/2: depth 24 and df_idxs [8, 16] as XL; lognormal times',
    }),
  },
];

const yaml = (o: Record<string, unknown>) => Object.entries(o).map(([k, v]) => `  ${k}: ${v}`).join('\n');

mkdirSync(out, { recursive: true });
for (const p of SPECS) {
  for (const s of SIZES) {
    const fam = p.family ?? 'SiT';
    const name = `${p.method}-${fam.toLowerCase()}-${s.toLowerCase()}2`;
    const sec = p.section?.(s);
    const reads = p.method === 'repa' || p.method === 'reg' || p.method === 'repa-e';
    const def = methodByName(p.method);
    const lines = [
      `# ${def.title} at ${fam}-${s}/2 as the paper trains it, for \`diffactor simulate\` only. ${def.cite}.`,
      `#   npx diffactor simulate --spec specs/paper/${name}.yaml --device a100 --gpus 8`,
      p.pixels
        ? '# 256×256 ImageNet pixels (the VAE is trained with the SiT), 1000 classes; batch 256 (32 per GPU on 8),'
        : '# 256×256 ImageNet as SD-VAE latents 32×32×4, 1000 classes; batch 256 (32 per GPU on 8),',
      '# AdamW lr 1e-4, clip 1, EMA 0.9999, 400K steps (the papers\' comparison point).',
      ...(sec ? [`# ${p.method}: ${sec.note}.`] : []),
      ...(reads ? ['# Encoder: DINOv2-B/14 (patch 14 on 224² → 16×16 tokens = the SiT/2 grid). Here it reads the model\'s input', `# resized to 224² (${p.pixels ? 'pixels, as the paper' : '4 latent channels, so +150,528 patch-embedding parameters over the 3-channel original'}).`] : []),
      '# Not trainable here: `imagenet-latents` / `imagenet` is no dataset this project opens.',
      '# Generated by scripts/paper-specs.ts (npx tsx scripts/paper-specs.ts).',
      `name: ${name}`,
      'seed: 0',
      `methods: [${p.method}]`,
      'data:',
      `  dataset: ${p.pixels ? 'imagenet' : 'imagenet-latents'}`,
      `  size: ${p.pixels ? 256 : 32}`,
      '  hflip: true',
      'model:',
      `  preset: ${fam}-${s}/2`,
      ...(p.model ? [yaml(p.model(s))].filter((l) => l) : []),
      'diffusion:',
      `  objective: ${fam === 'DiT' ? 'ddpm' : 'velocity'}`,
      ...(fam === 'DiT' ? [] : ['  path: linear']),
      ...(p.diffusion ? [yaml(p.diffusion)] : []),
      ...(reads ? ['encoder:', ENCODER.trimEnd(), `  normalization: ${p.pixels ? 'imagenet' : 'identity'}`] : []),
      ...(sec ? [`${sec.key}:`, yaml(sec.body)] : []),
      'train:',
      '  steps: 400000',
      '  batch_size: 256',
      '  lr: 0.0001',
      '  grad_clip: 1.0',
      '  ema_decay: 0.9999',
      'sample:',
      `  sampler: ${fam === 'DiT' ? 'ddpm' : 'sde'}`,
      '  steps: 250',
      '',
    ];
    writeFileSync(path.join(out, `${name}.yaml`), lines.join('\n'));
  }
}
process.stdout.write(`wrote ${SPECS.length * SIZES.length} specs to ${path.relative(process.cwd(), out)}/\n`);
