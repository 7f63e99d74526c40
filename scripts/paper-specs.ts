// Writes specs/paper/: the registered methods at the papers' scale (SiT-B/2, L/2, XL/2 on 256×256
// ImageNet as 32×32×4 SD-VAE latents, DINOv2-B/14 where a method reads an encoder, batch 256, AdamW
// 1e-4, EMA 0.9999), for `diffactor simulate` (docs/simulate.md). The settings are the papers' and
// official repositories' (../shared/methods/methods-a.md summarises them; each spec's header says
// where a value comes from or that the paper does not state it). Regenerate with
//   npx tsx scripts/paper-specs.ts
// These specs are not trainable here: `imagenet-latents` is no dataset this project opens.
// U-REPA, ReDi, DDT and SoftREPA follow ../shared/methods/methods-a.md §6 and methods-b.md §1, §3, §4;
// SoftREPA's paper model (SD3) is not expressible here: its spec is the closest analogue, and says so.
// DiGIT and RAE (stage 1) are not SiTs on latents: they train on 256² ImageNet pixels through their
// own models (DIRECT below; methods-b.md §8, §5); their headers say what of the paper's model is
// built and what is ours.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { methodByName } from '../src/methods/registry.ts';

type Size = 'B' | 'L' | 'XL';
const SIZES: Size[] = ['B', 'L', 'XL'];
const out = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'specs', 'paper');

/** REPA / REG / REPA-E: the projector reads block 4 of SiT-B, 8 of L and XL (REPA README, REG train.sh). */
const encoderDepth = (s: Size) => (s === 'B' ? 4 : 8);

interface Section { key: string; body: Record<string, unknown>; note: string }
interface PaperSpec {
  method: string;
  /** Further methods trained with it (DDT's official trainer adds REPA). */
  with?: string[];
  family?: 'DiT';
  pixels?: boolean;
  /** The sizes the paper trains (default B, L, XL). */
  sizes?: Size[];
  /** The frozen encoder's preset when a method reads one (default DINOv2-B/14). */
  encoder?: string;
  model?: (s: Size) => Record<string, unknown>;
  diffusion?: Record<string, unknown>;
  section?: (s: Size) => Section;
  /** More sections (a method of `with`). */
  sections?: (s: Size) => Section[];
  /** Lines of the header that replace the shared data/optimiser lines. */
  header?: string[];
  train?: Record<string, unknown>;
  sample?: Record<string, unknown>;
}

const ENCODERS: Record<string, string> = { dinov2_vitb14: 'DINOv2-B/14', dinov2_vitb14_reg: 'DINOv2-B/14 with registers' };
const encoderLines = (preset: string) => [`  checkpoint: null           # shape-only: ${ENCODERS[preset]} (${preset}) built from its preset`, `  preset: ${preset}`];
/** Methods that read the frozen encoder (a section `encoder:`). */
const READS_ENCODER = new Set(['repa', 'reg', 'repa-e', 'u-repa', 'redi']);
/** SiT widths: a projector of hidden width D (DDT's REPA head). */
const WIDTH: Record<Size, number> = { B: 768, L: 1024, XL: 1152 };
/** ImageNet-1k's class names, index = label (scripts/imagenet-classes.txt says where they come from). */
const IMAGENET_CLASSES = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'imagenet-classes.txt'), 'utf8')
  .split('\n').filter((l) => l && !l.startsWith('#'));
if (IMAGENET_CLASSES.length !== 1000) throw new Error(`scripts/imagenet-classes.txt: expected 1000 class names, found ${IMAGENET_CLASSES.length}`);

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
  {
    // The stage layout of SiT↓ at paper scale is not stated in what could be read (paper abstract,
    // methods-b.md §3; the official repository was not available): ours, and the header says so.
    method: 'u-repa',
    section: (s) => {
      const stage = encoderDepth(s), mid = { B: 12, L: 24, XL: 28 }[s] - 2 * stage;
      return {
        key: 'u_repa', body: { stage_blocks: stage, mid_blocks: mid, proj_coeff: 0.5, manifold_coeff: 3.0, manifold: 'sample', upsample: 'bilinear', projector_dim: 2048 },
        note: `${stage} + ${mid} + ${stage} blocks (16×16 tokens, the 8×8 middle, 16×16 with long skips), aligned after block ${stage + mid} (the last middle block): OUR layout — the paper's block counts per stage are not known here (its repository could not be read); the first stage is REPA's aligned trunk (block ${stage}), the SiT's depth is kept. λ 0.5, w 3.0 (quoted as the paper's defaults), sample-level manifold loss, MLP then bilinear ×2, projector 2048 (REPA's)`,
      };
    },
  },
  {
    method: 'redi', encoder: 'dinov2_vitb14_reg',
    section: () => ({
      key: 'redi', body: { rank: 8, feature_weight: 1.0, drop_prob: 0, rg_scale: 1.0, cfg_image_only: true, pca_images: 76800 },
      note: 'r = 8 PCA channels of DINOv2-B/14-reg beside the 4 latent channels (12 in, 12 out under one patch embedding), λ 1, no feature drop (the default; 0.2 to sample with RG), PCA fitted on 300 × 256 images (train_redi.py, README, calc_pca.py); the fit runs once before training and is not simulated',
    }),
  },
  {
    method: 'ddt', with: ['repa'],
    diffusion: { time_sampling: 'logit-normal' },
    sections: (s) => {
      const E = { B: 8, L: 20, XL: 22 }[s], depth = { B: 12, L: 24, XL: 28 }[s];
      return [{
        key: 'ddt', body: { encoder_blocks: E },
        note: `${E}En${depth - E}De (${s === 'XL' ? 'configs/repa_improved_ddt_xlen22de6_256.yaml' : 'the paper, tools/figures'}); logit-normal times; AdamW β2 0.95, no weight decay (the config; it sets no gradient clipping, the schema keeps clip 1: one norm pass); Euler sampler, 250 steps`,
      }, {
        key: 'repa', body: { encoder_depth: 8, proj_coeff: 0.5, projector_dim: WIDTH[s] },
        note: `the official trainer's REPA term at encoder block 8, λ 0.5, projector hidden width D = ${WIDTH[s]} (training_repa.py; block 8 of B/2 and L/2 assumed as XL's)`,
      }];
    },
    train: { beta2: 0.95 },
    sample: { sampler: 'euler' },
  },
  {
    method: 'softrepa', sizes: ['XL'],
    header: [
      '# NOT the paper\'s model: SoftREPA trains soft tokens on a frozen SD3 (MM-DiT, 24 joint blocks, T5 + CLIP text',
      '# encoders, COCO captions at 512²/1024²), which this project cannot build. The closest analogue here: the',
      '# caption-conditioned SiT-XL/2 (src/methods/softrepa/model.ts: SiT blocks over [soft ; text ; image]) on 256²',
      '# ImageNet as SD-VAE latents 32×32×4, frozen (seed-initialised: the cost does not depend on the weights),',
      '# captions written from ImageNet\'s 1000 class names (scripts/imagenet-classes.txt) in a 77-token stream',
      '# (CLIP\'s length; SD3 joins 77 CLIP and up to 256 T5 tokens) with a 4096-wide frozen text space (T5\'s),',
      '# the paper\'s soft tokens: 4 before each of the first 5 blocks, 5·4·4096 = 81,920 trainable parameters.',
      '# Batch 4 image–caption pairs per step, B² = 16 pair forwards sharing one t and ε (run_train.sh: --batch_size 4;',
      '# its 2 GPUs hold the model\'s parts, not replicas: simulate with --gpus 1), AdamW lr 1e-3, wd 1e-4, no EMA;',
      '# 2 epochs of COCO-2017 train (118,287 images) at batch 4 = 59,144 steps if an epoch visits each image once.',
    ],
    section: () => ({
      key: 'softrepa',
      body: {
        stage: 'soft', init: 'null', soft_layers: 5, soft_tokens: 4, text_dim: 4096, max_tokens: 77,
        class_names: JSON.stringify(IMAGENET_CLASSES), scale: 4.0, temperature: 0.07, dweight: 0, t_range: '[0, 1]',
      },
      note: 'n_dc_layers 5, n_dc_tokens 4, s 4.0, τ 0.07, dweight 0 (SD3 in run_train.sh, train.py, transformer.py); t over the whole range',
    }),
    train: { steps: 59144, batch_size: 4, lr: 0.001, weight_decay: 0.0001, ema_decay: 0 },
  },
];

const yaml = (o: Record<string, unknown>) => Object.entries(o).map(([k, v]) => `  ${k}: ${v}`).join('\n');

/** A paper spec written out whole (no SiT-on-latents template): header lines and YAML sections. */
interface DirectSpec { name: string; method: string; gpus: number; header: string[]; sections: [string, Record<string, unknown>][] }

const IMAGENET_TRAIN = 1281167;
/** DiGIT's stage-1 GPT (config/stage1/dino_base.yaml; README's tables for L): B is 16 × 1024, 16 heads,
 *  FFN 4096, K = 8192 on DINOv2-B/14-reg; L is 1536 wide on DINOv2-L/14-reg with K = 16384 (README:
 *  km_16k, topk 400); L's depth and heads are not stated: 24 blocks (what gives the published 732M
 *  with K = 16384, see test/bench/simulate.test.ts), 24 heads of 64 as B's. */
const DIGIT = {
  B: { enc: 'dinov2_vitb14_reg', encName: 'DINOv2-B/14 with registers', hidden: 1024, depth: 16, heads: 16, codes: 8192, topK: 200, epochs: 400, params: '219M' },
  L: { enc: 'dinov2_vitl14_reg', encName: 'DINOv2-L/14 with registers', hidden: 1536, depth: 24, heads: 24, codes: 16384, topK: 400, epochs: 200, params: '732M' },
};

function digitSpec(s: 'B' | 'L'): DirectSpec {
  const g = DIGIT[s], batch = 4096, steps = s === 'B' ? 125000 : Math.round(g.epochs * IMAGENET_TRAIN / batch / 100) * 100;
  return {
    name: `digit-gpt-${s.toLowerCase()}`, method: 'digit', gpus: 16,
    header: [
      `# DiGIT-${s} (${g.params} in the paper's tables): stage 1 as the paper trains it — ${g.encName} (patch 14 on 224² → 16×16`,
      `# tokens) clustered into K = ${g.codes} k-means codes, a class-conditional GPT of ${g.depth} blocks × ${g.hidden} (${g.heads} heads, FFN ${4 * g.hidden})`,
      '# over the 256 codes in raster order, label smoothing 0.1, Adam β (0.9, 0.98), wd 0.01, lr 3e-4, clip 1, no EMA',
      `# (config/stage1/dino_base.yaml${s === 'L' ? '; L: README (width 1536, km_16k, topk 400); depth 24 and 24 heads are NOT stated: 24 blocks give the published 732M' : ''}).`,
      `# Batch 4096 = 256 per GPU on 16 GPUs: 125,000 updates of 4096 are the README's 400 epochs of B (the config sets 256 per GPU`,
      `# and 125K updates, not the GPU count); ${s === 'B' ? '125,000 steps (the config)' : `${steps} steps = ${g.epochs} epochs (README, L) at B's batch`}.`,
      '# NOT the paper\'s model in these points (src/methods/digit/): pre-norm blocks (fairseq\'s stage 1 is post-norm), no EOS',
      '# (256 targets, not 257), no embedding scale, the encoder\'s final-norm tokens instead of block L−3\'s, AdamW (fairseq\'s',
      '# Adam adds the 0.01 decay to the gradient), constant lr after',
      '# 6250 warm-up steps (fairseq: inverse-sqrt), and stage 2 (a second GPT of the same size over MAGE-VQGAN codes + the',
      '# VQGAN decoder) replaced by our conv decoder from code embeddings (width 64, 16× nearest upsampling to 256²), trained',
      '# in the same step: its cost is ours, not the paper\'s. The k-means fit (faiss, 20 iterations on ~10 % of ImageNet-train',
      '# = 128,117 images) runs once at build and is not simulated; the step\'s nearest-code assignment is (one gemm + argmin).',
      `# Encoder: ${g.encName}; here it reads the model's 256² input resized to 224² (pixels, as the paper).`,
    ],
    sections: [
      ['model', { preset: 'SiT-B/2', patch_size: 16, hidden_size: g.hidden, depth: g.depth, num_heads: g.heads, mlp_ratio: 4 }],
      ['diffusion', { path: 'linear', objective: 'velocity           # not read by DiGIT (no diffusion)' }],
      ['encoder', { checkpoint: `null           # shape-only: ${g.encName} (${g.enc}) built from its preset`, preset: g.enc, normalization: 'imagenet' }],
      ['digit', {
        tokens: 'encoder', codes: g.codes, kmeans_images: 128117, kmeans_iters: 20, label_smoothing: 0.1, temperature: 1.0, top_k: g.topK, top_p: 1.0,
        decoder_embed: 32, decoder_width: 64,
      }],
      ['train', { steps, batch_size: batch, lr: 0.0003, beta2: 0.98, weight_decay: 0.01, warmup_steps: 6250, grad_clip: '1.0', ema_decay: 0 }],
      ['sample', { sampler: 'euler          # not read: DiGIT draws with its own AR sampler', per_class: 1 }],
    ],
  };
}

/** RAE stage 1 (configs/stage1/training/DINOv2-B_decXL.yaml, configs/decoder/ViTXL/config.json). */
function raeDecoderSpec(): DirectSpec {
  const batch = 512, perEpoch = Math.ceil(IMAGENET_TRAIN / batch), steps = 16 * perEpoch;
  return {
    name: 'rae-decoder-vitxl', method: 'rae', gpus: 8,
    header: [
      '# RAE stage 1 as the paper trains it: the ViT-XL decoder (28 blocks × 1152, 16 heads, FFN 4096, patch 16, a CLS token)',
      '# on the frozen DINOv2-B/14-with-registers tokens (224² → 16×16×768, final LayerNorm without its affine), 256² output;',
      `# noise augmentation τ 0.8; L1 + 0.75·adaptive GAN; AdamW 2e-4, β (0.9, 0.95), wd 0; batch 512 (64 per GPU on 8; the`,
      `# GPU count is not stated), 16 epochs = ${steps} steps, cosine with 1 warm-up epoch, EMA 0.9978 (DINOv2-B_decXL.yaml;`,
      `# configs/decoder/ViTXL/config.json). RAE starts D at epoch 6 (step ${5 * perEpoch + 1}) and the GAN term at epoch 8 (step ${7 * perEpoch + 1});`,
      '# here both start at step 1, because `simulate` costs step 1: so the simulated step is one of the last 9 epochs (D and the',
      '# GAN term on), the cost of most of the run. Set them back to train this schedule.',
      '# NOT the paper\'s in these points (src/methods/rae/): the discriminator is a PatchGAN (PatchGAN-official: ndf 64, 3 layers),',
      '# RAE\'s is a frozen DINO-S/8 with trainable conv heads and DiffAug; LPIPS is off (perceptual_weight 0: no VGG ships for',
      '# ImageNet, so its cost is missing); gradient clipping 1 on the joint norm (the config sets 0); one reference image per',
      '# class for the reconstruction grid. Stage 2 (DiT^DH-XL) is not in the registry yet: no spec.',
      '# Encoder: DINOv2-B/14 with registers; here it reads the model\'s 256² input resized to 224² (pixels, as the paper).',
    ],
    sections: [
      ['model', { preset: 'SiT-XL/2', patch_size: 16, hidden_size: 1152, depth: 28, num_heads: 16, mlp_ratio: '3.5555555555555554   # FFN 4096 = 1152 · 32/9' }],
      ['encoder', { checkpoint: 'null           # shape-only: DINOv2-B/14 with registers (dinov2_vitb14_reg) built from its preset', preset: 'dinov2_vitb14_reg', normalization: 'imagenet' }],
      ['rae', {
        stage: 'decoder', noise_tau: 0.8, l1_weight: 1.0, l2_weight: 0, perceptual_weight: 0, gan_weight: 0.75,
        disc_start: 1, gan_start: 1, disc: 'PatchGAN-official', ref_per_class: 1,
      }],
      ['train', {
        steps, batch_size: batch, lr: 0.0002, beta1: 0.9, beta2: 0.95, weight_decay: 0, schedule: 'cosine', warmup_steps: perEpoch,
        min_lr_ratio: 0.1, grad_clip: '1.0', ema_decay: 0.9978,
      }],
      ['sample', { sampler: 'euler          # any: the decoder renders reconstructions', steps: 1, per_class: 1 }],
    ],
  };
}

const DIRECT: DirectSpec[] = [digitSpec('B'), digitSpec('L'), raeDecoderSpec()];

mkdirSync(out, { recursive: true });
let written = 0;
for (const p of SPECS) {
  for (const s of p.sizes ?? SIZES) {
    const fam = p.family ?? 'SiT';
    const name = `${p.method}-${fam.toLowerCase()}-${s.toLowerCase()}2`;
    const secs = [...(p.section ? [p.section(s)] : []), ...(p.sections?.(s) ?? [])];
    const methods = [p.method, ...(p.with ?? [])];
    const reads = methods.some((m) => READS_ENCODER.has(m));
    const enc = p.encoder ?? 'dinov2_vitb14';
    const def = methodByName(p.method);
    const train = { steps: 400000, batch_size: 256, lr: 0.0001, grad_clip: '1.0', ema_decay: 0.9999, ...p.train };
    const lines = [
      p.header
        ? `# ${def.title}'s closest analogue at ${fam}-${s}/2, for \`diffactor simulate\` only. ${def.cite}.`
        : `# ${def.title} at ${fam}-${s}/2 as the paper trains it, for \`diffactor simulate\` only. ${def.cite}.`,
      `#   npx diffactor simulate --spec specs/paper/${name}.yaml --device a100 --gpus ${p.header ? 1 : 8}`,
      ...(p.header ?? [
        p.pixels
          ? '# 256×256 ImageNet pixels (the VAE is trained with the SiT), 1000 classes; batch 256 (32 per GPU on 8),'
          : '# 256×256 ImageNet as SD-VAE latents 32×32×4, 1000 classes; batch 256 (32 per GPU on 8),',
        '# AdamW lr 1e-4, clip 1, EMA 0.9999, 400K steps (the papers\' comparison point).',
      ]),
      ...secs.map((x) => `# ${x.key.replace('_', '-')}: ${x.note}.`),
      ...(reads ? [`# Encoder: ${ENCODERS[enc]} (patch 14 on 224² → 16×16 tokens = the SiT/2 grid). Here it reads the model\'s input`, `# resized to 224² (${p.pixels ? 'pixels, as the paper' : '4 latent channels, so +150,528 patch-embedding parameters over the 3-channel original'}).`] : []),
      '# Not trainable here: `imagenet-latents` / `imagenet` is no dataset this project opens.',
      '# Generated by scripts/paper-specs.ts (npx tsx scripts/paper-specs.ts).',
      `name: ${name}`,
      'seed: 0',
      `methods: [${methods.join(', ')}]`,
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
      ...(reads ? ['encoder:', ...encoderLines(enc), `  normalization: ${p.pixels ? 'imagenet' : 'identity'}`] : []),
      ...secs.flatMap((x) => [`${x.key}:`, yaml(x.body)]),
      'train:',
      yaml(train),
      'sample:',
      yaml({ sampler: fam === 'DiT' ? 'ddpm' : 'sde', steps: 250, ...p.sample }),
      '',
    ];
    writeFileSync(path.join(out, `${name}.yaml`), lines.join('\n'));
    written++;
  }
}
for (const d of DIRECT) {
  const def = methodByName(d.method);
  const lines = [
    `# ${def.title} at paper scale, for \`diffactor simulate\` only. ${def.cite}.`,
    `#   npx diffactor simulate --spec specs/paper/${d.name}.yaml --device a100 --gpus ${d.gpus}`,
    ...d.header,
    '# Not trainable here: `imagenet` is no dataset this project opens.',
    '# Generated by scripts/paper-specs.ts (npx tsx scripts/paper-specs.ts).',
    `name: ${d.name}`,
    'seed: 0',
    `methods: [${d.method}]`,
    'data:',
    '  dataset: imagenet',
    '  size: 256',
    '  hflip: true',
    ...d.sections.flatMap(([k, body]) => [`${k}:`, yaml(body)]),
    '',
  ];
  writeFileSync(path.join(out, `${d.name}.yaml`), lines.join('\n'));
  written++;
}
process.stdout.write(`wrote ${written} specs to ${path.relative(process.cwd(), out)}/\n`);
