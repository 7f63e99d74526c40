// `diffactor standin classifier`: train the evaluation classifier stand-in on Fashion-MNIST or the
// built-in shapes with a progress bar, report test accuracy and wall time, and write the
// safetensors (default runs/standins/classifier-<data>.safetensors; the shipped file under
// specs/standins/ that features.ts loads is replaced only when --out names it).
// Not here: the training loop (standins/classifier.ts), feature extraction (standins/features.ts).
import path from 'node:path';
import { backendInfo } from '../kernels/index.ts';
import { saveClassifier, trainClassifier, STANDIN_DATA, type StandinData } from '../standins/classifier.ts';
import { replaceShippedHint, standinRunFile } from '../standins/ssl/cli.ts';
import { progressBar, type Progress } from '../progress.ts';
import { mkdirSync } from 'node:fs';
import { writePngGrid } from '../io/png.ts';
import { reconstructionPairs, saveVaeStandin, trainVae, openVaeData, VAE_STANDIN_DATA, type VaeStandinData } from '../standins/vae.ts';

export interface StandinClassifierCliOptions { data?: string; epochs?: number; out?: string; seed?: number; maxSteps?: number }

export function standinClassifier(o: StandinClassifierCliOptions): void {
  const data = (o.data ?? 'fashion-mnist') as StandinData;
  if (!STANDIN_DATA.includes(data)) throw new Error(`standin classifier: --data must be one of ${STANDIN_DATA.join(', ')}, got '${o.data}'`);
  const epochs = o.epochs ?? 3;
  const out = o.out ?? standinRunFile('classifier', data);
  console.error(`diffactor standin classifier: ${data}, ${epochs} epochs → ${out}  (kernels: ${backendInfo.backend}${backendInfo.backend === 'native' ? `/${backendInfo.isa}, ${backendInfo.threads} threads` : ''})`);
  mkdirSync(path.dirname(out), { recursive: true }); // an unwritable path fails before training, not after
  let bar: Progress | null = null;
  const t = trainClassifier({
    data, epochs, seed: o.seed, maxSteps: o.maxSteps,
    onStep: (step, total, f) => {
      bar ??= progressBar(total, 'classifier');
      bar.update(step, { loss: f.loss, acc: f.acc, lr: f.lr });
      if (step === total) bar.stop();
    },
    onEpoch: (e, acc) => console.error(`\nepoch ${e}: accuracy ${(100 * acc).toFixed(2)}% on the first 2000 test images`),
  });
  t.metadata.command = `npx diffactor standin classifier --data ${data} --epochs ${epochs}${o.seed ? ` --seed ${o.seed}` : ''}`;
  saveClassifier(out, t);
  console.error(`${t.steps} steps in ${(t.trainSeconds / 60).toFixed(1)} min; test accuracy ${(100 * t.testAccuracy).toFixed(2)}% on ${t.testCount} images; wrote ${path.relative(process.cwd(), out) || out}`);
  if (o.out === undefined) console.error(replaceShippedHint('classifier', data));
}

// `diffactor standin vae`: train the VAE stand-in (standins/vae.ts) for a wall-clock budget or a
// step count, then write the diffusers-layout safetensors (default runs/standins/vae-<data>.safetensors)
// and, with --png, originals (top row) over reconstructions (bottom row) of the first test images.
export interface StandinVaeCliOptions { data?: string; minutes?: number; steps?: number; out?: string; png?: string; preset?: string; seed?: number }

export function standinVae(o: StandinVaeCliOptions): void {
  const data = (o.data ?? 'fashion-mnist') as VaeStandinData;
  if (!VAE_STANDIN_DATA.includes(data)) throw new Error(`standin vae: --data must be one of ${VAE_STANDIN_DATA.join(', ')}, got '${o.data}'`);
  const out = o.out ?? standinRunFile('vae', data);
  const budget = o.steps !== undefined ? `${o.steps} steps` : `${o.minutes ?? 15} minutes`;
  console.error(`diffactor standin vae: ${data}, ${budget} → ${out}  (kernels: ${backendInfo.backend}${backendInfo.backend === 'native' ? `/${backendInfo.isa}, ${backendInfo.threads} threads` : ''})`);
  // Fail on an unwritable path before a long run, not after it.
  for (const f of [out, o.png]) if (f) mkdirSync(path.dirname(f), { recursive: true });
  let bar: Progress | null = null;
  const t = trainVae({
    data, preset: o.preset, steps: o.steps, minutes: o.steps === undefined ? o.minutes ?? 15 : undefined, seed: o.seed,
    onPhase: (p) => console.error(p),
    onStep: (step, total, f) => {
      bar ??= progressBar(total, 'vae');
      bar.update(step, { loss: f.loss, l1: f.l1, kl: f.kl, lr: f.lr });
      if (step === total) bar.stop();
    },
  });
  saveVaeStandin(out, t);
  if (o.png) {
    const test = openVaeData(data, 'test'), n = 12;
    writePngGrid(o.png, reconstructionPairs(t.model, test, n), 2 * n, test.channels, test.height, test.width, n, 2);
  }
  const e = t.test, s = t.stats;
  console.error(`${t.steps} steps at batch ${t.batchSize} in ${(t.trainSeconds / 60).toFixed(1)} min; loss ${t.firstLoss.toFixed(4)} → ${t.lastLoss.toFixed(4)}`);
  console.error(`test (${e.count} images, posterior mean): MSE ${e.mse.toFixed(5)}, PSNR ${e.psnr.toFixed(2)} dB (per image ${e.psnrPerImage.toFixed(2)} dB), L1 ${e.l1.toFixed(4)}, KL ${e.kl.toFixed(1)}`);
  console.error(`latents over ${s.count} training images: shift_factor ${s.shiftFactor.toFixed(5)}, scaling_factor ${s.scalingFactor.toFixed(5)}; per channel mean [${s.channelMean.map((v) => v.toFixed(3)).join(', ')}], std [${s.channelStd.map((v) => v.toFixed(3)).join(', ')}]`);
  console.error(`wrote ${path.relative(process.cwd(), out) || out}${o.png ? ` and ${o.png}` : ''}`);
  if (o.out === undefined) console.error(replaceShippedHint('vae', data));
}
