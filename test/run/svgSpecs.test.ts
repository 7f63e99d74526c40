// The shipped SVG specs as written, with only the batch, steps and grid cut for speed: stage 1 is
// specs/svg-autoencoder.yaml trained ONE step on the reference engine (the spec's header command,
// shortened), its checkpoint named as specs/svg.yaml's latent.autoencoder; svg.yaml then trains 2
// steps ON ACTORS in its 136×8×8 space (128 encoder channels + 8 residual) and writes a grid of
// decoded 1×32×32 Fashion-MNIST samples. Without the stage-1 run, svg.yaml says which file is missing.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { writePngGrid } from '../../src/io/png.ts';
import { saveCheckpoint } from '../../src/build/checkpoint.ts';
import { openTrainData } from '../../src/build/setup.ts';
import { loadSpec } from '../../src/spec/load.ts';
import { Trainer } from '../../src/run/reference.ts';
import { runActors } from '../../src/run/actorRun.ts';
import { SvgDiT } from '../../src/methods/svg-dit/model.ts';
import { readCheckpoint, readMetrics, tmpDir } from './methodRun.ts';

const SPECS = fileURLToPath(new URL('../../specs/', import.meta.url));
const small = ['train.batch_size=4', 'train.log_every=1'];

describe('specs/svg-autoencoder.yaml and specs/svg.yaml', () => {
  it('svg.yaml refuses to build before stage 1, naming latent.autoencoder', () => {
    const spec = loadSpec(path.join(SPECS, 'svg.yaml'), ['latent.autoencoder=/nonexistent/svg-autoencoder/checkpoint.safetensors']);
    expect(() => new Trainer(spec, openTrainData(spec))).toThrow(/latent\.autoencoder: \/nonexistent\/svg-autoencoder\/checkpoint\.safetensors not found/);
  });

  it('stage 1 one step, then svg.yaml 2 steps on actors in its 136×8×8 space: a grid of decoded 32×32 samples', async () => {
    const s1 = loadSpec(path.join(SPECS, 'svg-autoencoder.yaml'), [...small, 'train.steps=1', 'train.warmup_steps=0', 'svg.stat_images=64']);
    const t1 = new Trainer(s1, openTrainData(s1));
    expect(Number.isFinite(t1.trainStep().loss)).toBe(true);
    const ck = path.join(tmpDir('svg', 'spec-stage1'), 'checkpoint.safetensors');
    saveCheckpoint(ck, t1.checkpoint());
    const spec = loadSpec(path.join(SPECS, 'svg.yaml'), [...small, `latent.autoencoder=${ck}`, 'train.steps=2', 'train.warmup_steps=0', 'sample.steps=2', 'sample.per_class=1']);
    const t = new Trainer(spec, openTrainData(spec));
    expect([t.config.inChannels, t.config.inputSize, t.config.patchSize]).toEqual([136, 8, 1]);
    expect(t.model).toBeInstanceOf(SvgDiT);
    const out = tmpDir('svg', 'spec-stage2');
    await runActors({ spec, out, placement: 'local', quiet: true });
    const m = readMetrics(out);
    expect(m).toHaveLength(2);
    for (const l of m) expect(Number.isFinite(l.loss)).toBe(true);
    // The grid of 10 classes × 1 decoded 1×32×32 image (not 136×8×8 latents).
    const size = (f: string) => { const p = PNG.sync.read(readFileSync(f)); return [p.width, p.height]; };
    const ref = path.join(out, 'ref.png');
    writePngGrid(ref, new Float32Array(10 * 32 * 32), 10, 1, 32, 32, 1);
    expect(size(path.join(out, 'samples.png'))).toEqual(size(ref));
    const c = readCheckpoint(out);
    expect(c.ema.has('blocks.0.attn.q_norm.weight')).toBe(true);
    expect(existsSync(path.join(out, 'checkpoint.safetensors'))).toBe(true);
  }, 600_000);
});
