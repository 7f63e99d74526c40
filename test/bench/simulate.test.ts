// `diffactor simulate` against the papers' published numbers (issue 16), each with its source.
// Counted on shape-only tensors through the real models and the reference engine's step
// (src/bench/simulate.ts); the FLOP convention that gives the papers' numbers is fvcore's: a
// multiply-add of a linear/conv is ONE FLOP, a fused attention (F.scaled_dot_product_attention,
// REPA's and REG's SiT) is not seen, a non-affine layer norm is 4 FLOPs per element. DiT's 118.6
// counts attention's QKᵀ and PV products (timm's explicit matmuls) and no norms.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { loadSpec } from '../../src/spec/load.ts';
import { simulate, perfettoTrace, type SimulationReport } from '../../src/bench/simulate.ts';
import { A100, H100 } from '../../src/bench/devices.ts';
import { newCounters, withMeta } from '../../src/kernels/meta.ts';
import { createViT, vitPreset } from '../../src/models/vit.ts';
import { numTokens } from '../../src/models/config.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { createViTDecoder, vitDecoderPreset } from '../../src/models/vitDecoder.ts';
import { empty } from '../../src/tensor/tensor.ts';

const run = (name: string, gpus = 8): SimulationReport => simulate(loadSpec(`specs/paper/${name}.yaml`), { device: A100, gpus });
const actor = (r: SimulationReport, a: string) => r.actors.find((x) => x.actor === a)!;
/** fvcore's count of one sample's forward: linear/conv MACs + 4 per non-affine layer-norm element, in G. */
const fvcore = (r: SimulationReport, a = 'student') => r.gmacsPerSample[a].linear + 4 * r.gmacsPerSample[a].normElements;
/** PyTorch's parameter count of a SiT: trainable + pos_embed (a frozen nn.Parameter there, a buffer here). */
const torchParams = (r: SimulationReport, prefix = 0) => actor(r, 'student').trainable + (numTokens(sitPreset('SiT-XL/2')) + prefix) * 1152;

describe('published numbers', () => {
  const repa = run('repa-sit-xl2'), reg = run('reg-sit-xl2'), dit = run('dit-baseline-dit-xl2');
  const sit = run('sit-baseline-sit-xl2'), sra = run('sra-sit-xl2');
  const sitB = run('sit-baseline-sit-b2'), sraB = run('sra-sit-b2');

  it('SiT-XL/2 has 675M parameters (SiT paper Table 1; DiT Table 4: 675M)', () => {
    expect(torchParams(sit) / 1e6).toBeCloseTo(675.1, 1);
    expect(Math.round(torchParams(sit) / 1e6)).toBe(675);
  });

  it('DiT-XL/2: 118.6 Gflops (DiT paper Table 4) = linear + attention MACs of one forward', () => {
    const g = dit.gmacsPerSample.student;
    expect(g.linear + g.attention).toBeCloseTo(118.6, 1);
  });

  it('REPA SiT-XL/2 114.46 → REG 114.90 GFLOPs, +0.38 % (REG Table 4): fvcore\'s convention', () => {
    expect(fvcore(repa)).toBeCloseTo(114.46, 2);
    expect(fvcore(reg)).toBeCloseTo(114.90, 2);
    expect((fvcore(reg) / fvcore(repa) - 1) * 100).toBeCloseTo(0.38, 1); // 0.391 % unrounded; the table's 0.38 % is 114.90 / 114.46
  });

  it('REG adds a class token: 675 → 677M parameters (REG Table 4, rounded; exact +0.26 %, the table\'s +0.30 % is 677/675)', () => {
    const a = torchParams(repa), b = torchParams(reg, 1);
    expect(Math.round(a / 1e6)).toBe(675);
    expect(Math.round(b / 1e6)).toBe(677);
    expect((b / a - 1) * 100).toBeGreaterThan(0.2);
    expect((b / a - 1) * 100).toBeLessThan(0.35);
  });

  it('DINOv2-B/14 has ≈ 86M parameters (DINOv2, arXiv 2304.07193: ViT-B/14 86M)', () => {
    const at518 = withMeta(newCounters(), () => createViT(vitPreset('dinov2_vitb14', { imgSize: 518 }), 0));
    const n = at518.parameters().reduce((s, t) => s + t.size, 0);
    expect(n / 1e6).toBeCloseTo(86.58, 1); // the hub checkpoint's 86,580,480 (37×37+1 positions)
    // The simulated encoder: 224² (16×16 + 1 positions) on the model's 4 latent channels.
    expect(actor(repa, 'encoder').frozen / 1e6).toBeGreaterThan(85.5);
    expect(actor(repa, 'encoder').frozen / 1e6).toBeLessThan(86.6);
  });

  it('SRA\'s teacher partial forward (20/28 blocks, no backward) adds ≈ 20 % step time (SRA App. H: SiT-B 0.096 → 0.115 h, +19.8 %; SiT-XL 0.394 → 0.476 h, +20.8 %)', () => {
    expect(actor(sra, 'teacher').phases.forward.macs / actor(sit, 'student').phases.forward.macs).toBeCloseTo(20 / 28, 2);
    expect(actor(sra, 'teacher').phases.backward.flops).toBe(0);
    const xl = (sra.stepSeconds / sit.stepSeconds - 1) * 100, b = (sraB.stepSeconds / sitB.stepSeconds - 1) * 100;
    // The roofline gives +18.6 % (XL) and +19.1 % (B): within 3 points of the paper's measurements.
    expect(Math.abs(xl - 20.8)).toBeLessThan(3);
    expect(Math.abs(b - 19.8)).toBeLessThan(3);
  });

  it('a ring all-reduce on N GPUs moves 2(N−1)/N of the gradients; one replica has none', () => {
    const one = run('repa-sit-xl2', 1);
    expect(one.allReduce.seconds).toBe(0);
    const grads = 4 * (actor(repa, 'student').trainable + actor(repa, 'projector').trainable);
    expect(repa.allReduce.bytes).toBeCloseTo(2 * 7 / 8 * grads, 0);
    expect(one.batch).toBe(256);
    expect(repa.batch).toBe(32);
  });

  it('the trace has one track per actor and marks the critical path; the step is the critical path\'s length', () => {
    const t = perfettoTrace(repa) as { traceEvents: { ph: string; dur?: number; args?: { critical?: boolean } }[] };
    const slices = t.traceEvents.filter((e) => e.ph === 'X');
    expect(slices.length).toBe(repa.schedule.length);
    const critical = slices.filter((e) => e.args?.critical).reduce((s, e) => s + e.dur!, 0);
    expect(critical / 1e6).toBeCloseTo(repa.stepSeconds, 9);
  });

  it('DDT-XL/2 (22En6De) has 675M parameters (github.com/MCG-NJU/DDT README, Checkpoints table: DDT-XL/2(22en6de) 675M)', () => {
    const ddt = simulate(loadSpec('specs/paper/ddt-sit-xl2.yaml'), { device: A100, gpus: 8, batch: 1 }); // parameters do not depend on the batch
    // By hand from the architecture (methods-a.md §6, decoupled_improved_dit.py): two patch
    // embedders 2·(16·1152 + 1152), t-MLP 256·1152 + 1152 + 1152² + 1152, labels 1001·1152,
    // 28 blocks of 2·1152 (RMSNorm) + 1152·6912 + 6912 (adaLN) + 1152·3456 (qkv, no bias) + 2·72
    // (q/k RMSNorm) + 1152² + 1152 (proj) + 3·1152·3072 (SwiGLU, no bias), final adaLN
    // 1152·2304 + 2304 and Linear 1152·16 + 16; no pos_embed (2-D RoPE). The REPA head is apart.
    const byHand = 2 * (16 * 1152 + 1152) + (256 * 1152 + 1152 + 1152 ** 2 + 1152) + 1001 * 1152
      + 28 * (2 * 1152 + 1152 * 6912 + 6912 + 1152 * 3456 + 2 * 72 + 1152 ** 2 + 1152 + 3 * 1152 * 3072)
      + 1152 * 2304 + 2304 + 1152 * 16 + 16;
    expect(actor(ddt, 'student').trainable).toBe(byHand);
    expect(Math.round(actor(ddt, 'student').trainable / 1e6)).toBe(675);
    // The 22 encoder blocks, not the 6 decoder blocks, feed REPA at encoder block 8 (training_repa.py).
    expect(ddt.messages.some((m) => m.what.startsWith('hidden after block 8'))).toBe(true);
  });

  it('H100 is faster than A100 on the same spec; bytes and FLOPs do not depend on the device', () => {
    const h = simulate(loadSpec('specs/paper/repa-sit-xl2.yaml'), { device: H100, gpus: 8 });
    expect(h.stepSeconds).toBeLessThan(repa.stepSeconds);
    expect(actor(h, 'student').phases.forward.flops).toBe(actor(repa, 'student').phases.forward.flops);
  });
}, 120_000);

describe('diffactor simulate (command)', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/diffactor.js', 'simulate', ...args], { encoding: 'utf8' });

  it('prints one JSON report for a paper spec, with every actor and the step time', () => {
    const r = cli('--spec', 'specs/paper/sra-sit-b2.yaml', '--device', 'h100', '--gpus', '4', '--json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as SimulationReport & { hours: number };
    expect(j.actors.map((a) => a.actor)).toEqual(expect.arrayContaining(['student', 'projector', 'teacher']));
    expect(j.batch).toBe(64);
    expect(j.hours).toBeCloseTo(j.stepSeconds * 400000 / 3600, 6);
  }, 60_000);

  it('refuses a missing --spec and an unknown device, naming the option', () => {
    expect(cli('--json').stderr).toMatch(/--spec <file> is required/);
    expect(cli('--spec', 'specs/paper/repa-sit-b2.yaml', '--device', 'tpu').stderr).toMatch(/--device.*tpu/);
  }, 60_000);
});

describe('every shipped paper spec simulates', () => {
  it('at one sample per replica (costs are linear in the batch): every actor built, the student trained, a positive step time', () => {
    const files = readdirSync('specs/paper').filter((f) => f.endsWith('.yaml'));
    // 11 methods at B/2, L/2 and XL/2 (DiT's at DiT-*), SoftREPA's one analogue at XL/2, DiGIT-B and -L,
    // RAE's stage-1 ViT-XL decoder.
    expect(files.length).toBe(37);
    const methods = new Set(files.map((f) => loadSpec(`specs/paper/${f}`).methods[0]));
    expect([...methods].sort()).toEqual(['ddt', 'deepflow', 'digit', 'dit-baseline', 'layersync', 'rae', 'redi', 'reg', 'repa', 'repa-e', 'sit-baseline', 'softrepa', 'sra', 'u-repa']);
    for (const f of files) {
      const spec = loadSpec(`specs/paper/${f}`);
      // SoftREPA contrasts the B² image–caption pairs of one replica's batch: B ≥ 2.
      const r = simulate(spec, { device: A100, gpus: 8, batch: spec.methods.includes('softrepa') ? 2 : 1 });
      const s = actor(r, 'student');
      expect(s.trainable + s.frozen, f).toBeGreaterThan(1e8);
      expect(s.trainable, f).toBeGreaterThan(0);
      expect(s.phases.backward.flops, f).toBeGreaterThan(0);
      expect(r.stepSeconds, f).toBeGreaterThan(0);
      expect(r.criticalPath, f).toContain('student.backward');
    }
  }, 600_000);

  it('shipped specs simulate at their named dataset\'s shape: Fashion-MNIST\'s 1 channel, its latent space\'s 4, an encoder file read for its shapes', () => {
    // repa: SiT-S/4 on 1×32×32 pixels beside the shipped encoder file (its tensors read shape-only);
    // sit-latent: the frozen VAE stand-in encodes the 1-channel images to 4×8×8; rae-decoder and uniflow
    // attach their training-only parts (the perceptual net, the teacher) shape-only.
    for (const f of ['repa', 'sit-latent', 'start', 'digit', 'rae-decoder', 'uniflow']) {
      const r = simulate(loadSpec(`specs/${f}.yaml`), { device: A100, batch: 2 });
      expect(actor(r, 'student').phases.backward.flops, f).toBeGreaterThan(0);
    }
    const repa = simulate(loadSpec('specs/repa.yaml'), { device: A100, batch: 2 });
    expect(repa.messages.find((m) => m.to === 'encoder')?.shape, 'repa: the encoder\'s images').toEqual([2, 1, 32, 32]);
  }, 300_000);

  it('the new paper specs build what their headers say: U-REPA\'s skips, ReDi\'s 8 PCA channels, SoftREPA\'s 5·4·4096 soft tokens', () => {
    const sit = simulate(loadSpec('specs/paper/sit-baseline-sit-xl2.yaml'), { device: A100, batch: 1 });
    const trainable = (f: string, batch = 1) => actor(simulate(loadSpec(`specs/paper/${f}.yaml`), { device: A100, batch }), 'student').trainable;
    const base = actor(sit, 'student').trainable;
    // U-REPA XL/2: 8 + 12 + 8 blocks, one Linear(2D → D) fusion per long skip (8); each of its two
    // align terms sends the middle stage's hidden state: 8×8 tokens, not the 16×16 of REPA's block 8.
    const u = simulate(loadSpec('specs/paper/u-repa-sit-xl2.yaml'), { device: A100, batch: 1 });
    expect(actor(u, 'student').trainable - base).toBe(8 * (2 * 1152 * 1152 + 1152));
    const sent = u.messages.filter((m) => m.from === 'student' && m.to === 'projector');
    expect(sent.map((m) => m.shape)).toEqual([[1, 64, 1152], [1, 64, 1152]]);
    // ReDi XL/2: 4 + 8 channels in and out: patch embedding 8·2²·1152 more weights, final Linear 1152·8·2² + 8·2² more.
    expect(trainable('redi-sit-xl2') - base).toBe(8 * 4 * 1152 + 1152 * 32 + 32);
    // SoftREPA: only the soft tokens train.
    expect(trainable('softrepa-sit-xl2', 2)).toBe(5 * 4 * 4096);
  }, 300_000);

  it('DiGIT-B/-L: the stage-1 GPT has the published 219M / 732M parameters (README tables, github.com/DAMO-NLP-SG/DiGIT), counted by hand', () => {
    // The GPT (src/methods/digit/gpt.ts) by hand: embeddings (K codes + 1000 classes) × D, 256 learned
    // positions × D, per block two LayerNorms (4D), qkv 3D² + 3D, proj D² + D, MLP D·4D + 4D + 4D·D + D,
    // then ln_f 2D and the head D·K (no bias). The paper's model differs in ways that move the count
    // by < 0.01 % (4 special symbols in its vocabulary, 257 positions with EOS; post-norm blocks without
    // ln_f): the published counts are the floor of ours (219.60M, 732.22M). Our conv decoder is apart.
    const gpt = (K: number, D: number, L: number) => (K + 1000) * D + 256 * D + L * (4 * D + 3 * D * D + 3 * D + D * D + D + 8 * D * D + 5 * D) + 2 * D + D * K;
    const decoder = (K: number) => K * 32 + (32 * 9 * 64 + 64) + 4 * (64 * 9 * 64 + 64) + (64 * 9 * 3 + 3); // embed, conv_in, 4 × up, conv_out
    for (const [f, K, D, L, published] of [['digit-gpt-b', 8192, 1024, 16, 219], ['digit-gpt-l', 16384, 1536, 24, 732]] as const) {
      const r = simulate(loadSpec(`specs/paper/${f}.yaml`), { device: A100, batch: 1 });
      expect(actor(r, 'student').trainable, f).toBe(gpt(K, D, L) + decoder(K));
      expect(Math.floor(gpt(K, D, L) / 1e6), f).toBe(published);
      // The frozen DINOv2 with registers: B/14 ≈ 86M, L/14 ≈ 304M (DINOv2, arXiv 2304.07193).
      expect(actor(r, 'encoder').frozen / 1e6, f).toBeCloseTo(D === 1024 ? 85.73 : 303.23, 1);
      if (f === 'digit-gpt-b') {
        // The step's nearest-code assignment is counted, not walked: one (256, 768)·(768, K) product per
        // image on the encoder's actor (the official tokenizes in prepare_semantic, under no_grad), over
        // the same DINOv2-B/14-reg forward as RAE's spec.
        const rae = simulate(loadSpec('specs/paper/rae-decoder-vitxl.yaml'), { device: A100, batch: 1 });
        expect(r.gmacsPerSample.encoder.linear - rae.gmacsPerSample.encoder.linear).toBeCloseTo(256 * 8192 * 768 / 1e9, 6);
      }
    }
  }, 120_000);

  it('RAE stage 1: the ViT-XL decoder by hand (configs/decoder/ViTXL/config.json) and its cost, about a third of the SD-VAE decoder\'s 310 GFLOPs (arXiv 2510.11690 §1; rae-dit.github.io)', () => {
    const r = simulate(loadSpec('specs/paper/rae-decoder-vitxl.yaml'), { device: A100, batch: 1 });
    const D = 1152, F = 4096;
    // Linear 768 → D, a CLS token, 28 blocks (2 LayerNorms, qkv and proj with bias, FFN D → 4096 → D), the final
    // norm and Linear D → 16·16·3; the sin-cos positions are fixed (not counted).
    const dec = 768 * D + D + D + 28 * (4 * D + 3 * (D * D + D) + D * D + D + D * F + F + F * D + D) + 2 * D + D * 768 + 768;
    // PatchGAN-official (taming's NLayerDiscriminator, ndf 64, 3 layers): ours, in place of RAE's DINO-S/8 discriminator.
    const disc = (3 * 64 * 16 + 64) + (64 * 128 * 16 + 256) + (128 * 256 * 16 + 512) + (256 * 512 * 16 + 1024) + (512 * 16 + 1);
    expect(actor(r, 'student').trainable).toBe(dec + disc);
    expect(dec / 1e6).toBeCloseTo(415.06, 2);
    // The decoder's forward alone (the spec's step adds the PatchGAN's passes: D and the GAN term are on),
    // in fvcore's convention (a linear MAC = 1 FLOP): 257 tokens × 28 blocks × (4D² + 2DF), the embedding of the
    // 256 tokens and the prediction of all 257 rows (the CLS row is dropped after it, as ViTMAE's decoder).
    const c = newCounters();
    withMeta(c, () => createViTDecoder(vitDecoderPreset('ViTDec-XL'), 0).forward(empty([1, 256, 768])));
    const g = [...c.by.entries()].filter(([k]) => k.endsWith('|gemm')).reduce((t, [, v]) => t + v.macs, 0) / 1e9;
    expect(g).toBeCloseTo((257 * 28 * (4 * D * D + 2 * D * F) + (256 + 257) * 768 * D) / 1e9, 6);
    expect(g / 310).toBeGreaterThan(0.3);
    expect(g / 310).toBeLessThan(0.37);
    // The step's student holds it and more (D's passes for the GAN term and its own hinge).
    expect(r.gmacsPerSample.student.linear).toBeGreaterThan(g);
  }, 120_000);

  it('forward and backward costs are linear in the batch (what makes one sample per replica representative)', () => {
    const spec = loadSpec('specs/paper/repa-sit-b2.yaml');
    const [one, two] = [1, 2].map((b) => simulate(spec, { device: A100, batch: b }));
    for (const a of ['student', 'encoder', 'projector']) {
      expect(actor(two, a).phases.forward.macs).toBe(2 * actor(one, a).phases.forward.macs);
      expect(actor(two, a).phases.backward.macs).toBe(2 * actor(one, a).phases.backward.macs);
    }
  }, 60_000);
});
