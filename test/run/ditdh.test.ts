// RAE stage 2 end to end (methods: [dit-dh], latent.autoencoder = a tiny RAE stage-1 checkpoint
// that test/run/raeStage1.ts trains first): on actors, 6 steps equal 3 steps + a resume of 3 bit for
// bit (metrics, weights, EMA, optimiser, RNG); the model reads the normalised 16×4×4 token latents;
// the final grid holds DECODED 16×16 RGB images, not latents; the checkpoint rebuilds the DiT^DH with
// its shift and `diffactor sample` draws with it; both engines give the same losses.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { writePngGrid } from '../../src/io/png.ts';
import { openTrainData } from '../../src/build/setup.ts';
import { runActors } from '../../src/run/actorRun.ts';
import { Trainer } from '../../src/run/reference.ts';
import { DiTDH } from '../../src/methods/dit-dh/model.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectResumeExact, expectSamplesWith, readCheckpoint, readMetrics, tmpDir } from './methodRun.ts';
import { loadWeakModel } from '../../src/methods/dit-dh/autoguidance.ts';
import { tinyStage1 } from './raeStage1.ts';
import { modelConfigFor } from '../../src/build/setup.ts';
import { Evaluation } from '../../src/eval/evaluate.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';

describe('RAE stage 2 (dit-dh) in a stage-1 checkpoint\'s space', () => {
  const stage1 = tinyStage1();
  // 16 tokens of 16 channels: m = 256; m_base 64 → s = 2. Head width 16 = the token dimension.
  const spec = (o: Record<string, unknown> = {}) => tinySpec('dit-dh', {
    latent: { autoencoder: stage1 }, model: { preset: 'SiT-S/1', hidden_size: 32, depth: 2, num_heads: 2 },
    dit_dh: { head_width: 16, head_depth: 1, head_heads: 2, m_base: 64 }, ...o,
  });

  it('the reference engine and the actors: the same losses on the same latents', async () => {
    const s = spec({ train: { steps: 3, batch_size: 8, lr: 1e-3, log_every: 1, checkpoint_every: 3, schedule: 'constant', ema_decay: 0.9 } });
    const trainer = new Trainer(s, openTrainData(s));
    expect([trainer.config.inChannels, trainer.config.inputSize]).toEqual([16, 4]);
    expect((trainer.model as DiTDH).shift).toBeCloseTo(2, 12);
    const ref = [1, 2, 3].map(() => trainer.trainStep().loss);
    const out = tmpDir('ditdh', 'actors');
    await runActors({ spec: s, out, placement: 'local', quiet: true, samples: false });
    const act = readMetrics(out).map((l) => l.loss);
    expect(act).toHaveLength(3);
    for (let i = 0; i < 3; i++) expect(act[i]).toBeCloseTo(ref[i], 5);
  }, 240_000);

  it('on actors: 6 steps == 3 + resume 3 bit for bit; a decoded 16×16 grid; `sample` draws with the DiT^DH', async () => {
    const { dir } = await expectResumeExact('ditdh', spec(), ['loss', 'diff']);
    const size = (f: string) => { const p = PNG.sync.read(readFileSync(f)); return [p.width, p.height]; };
    const ref = path.join(dir, 'ref.png');
    writePngGrid(ref, new Float32Array(10 * 3 * 16 * 16), 10, 3, 16, 16, 1);
    expect(size(path.join(dir, 'samples.png'))).toEqual(size(ref));
    const m = expectSamplesWith('ditdh', dir, DiTDH) as DiTDH;
    expect(m.shift).toBeCloseTo(2, 12);
    // The run's checkpoint as another run's AutoGuidance weak model: its EMA weights, eval mode.
    const file = path.join(dir, 'checkpoint.safetensors');
    const weak = loadWeakModel(file, m.config);
    const ema = readCheckpoint(dir).ema;
    for (const [k, t] of weak.stateDict()) expect(Array.from(t.data), k).toEqual(Array.from(ema.get(k)!.data));
    expect(weak.training).toBe(false);
    const guided = spec({ dit_dh: { head_width: 16, head_depth: 1, head_heads: 2, m_base: 64, autoguidance: file, autoguidance_scale: 1.42 } });
    const t = new Trainer(guided, openTrainData(guided));
    expect((t.emaModel as DiTDH).weak).toBeInstanceOf(DiTDH);
    expect((t.emaModel as DiTDH).guidanceScale).toBe(1.42);
    expect(() => loadWeakModel(stage1, m.config)).toThrow(/dit_dh\.autoguidance .*: a run of \[rae\], not dit-dh/);
  }, 240_000);

  it('the Evaluator draws in the space (the shifted grid), decodes, and probes the body\'s hidden state: finite metrics that move with training', () => {
    const files = writeTestStandins(tmpDir('ditdh', 'eval'));
    const s = spec({ eval: { samples: 20, steps: 2, reference: 40, probe_train: 40, probe_test: 20, classifier: files.classifier, encoder: files.encoder, sfid_channels: 2, block: 1 } });
    const data = openTrainData(s);
    const ev = Evaluation.prepare(s, modelConfigFor(s, data));
    const trainer = new Trainer(s, data);
    const r = ev.run(trainer.emaModel as never);
    for (const [k, v] of Object.entries(r)) expect(Number.isFinite(v), k).toBe(true);
    for (let i = 0; i < 3; i++) trainer.trainStep();
    expect(ev.run(trainer.model as never).cknna).not.toBe(r.cknna);
  }, 240_000);
});
