// Why EPG's diffusion-stage samples look the way they do (issue 14; docs/studies/epg-long): for an
// EPG checkpoint of stage 'diffusion' (its EMA weights) this measures
//   - the denoiser's error on real test images at each σ of the sampler's range: MSE(clamp(D(x + σε,
//     σ, y)), x) beside two references that need no network — the class-mean image (the best D that
//     knows only the label, which a trained x0 model approaches as σ grows) and the noisy input
//     itself (the best D as σ → 0) — and the share of training draws at or above that σ
//     (σ = shift·exp(P_mean + P_std·n), n ~ N(0, 1): how often the model saw that region);
//   - sample grids (8 per class, the spec's sampler: Heun, its steps and guidance) started from the
//     paper's σ_max = 80·shift and from lower starts, each with the evaluation classifier's class
//     accuracy: if starting lower helps, the high-σ region the model rarely trained is the culprit.
// It measures and writes; the conclusions are docs/studies/epg-long/README.md's.
//   npx tsx scripts/epg-denoiser.ts --checkpoint runs/epg-long-seed0/checkpoint.safetensors \
//     [--out docs/studies/epg-long] [--images 200] [--starts 80,20,10,5] [--json FILE]
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadCheckpointWith, pickWeights } from '../src/build/checkpoint.ts';
import { samplingModel } from '../src/build/parts.ts';
import { openDataset } from '../src/data/open.ts';
import { sampleSize } from '../src/data/dataset.ts';
import { Rng } from '../src/tensor/rng.ts';
import { tensor } from '../src/tensor/tensor.ts';
import { noGrad } from '../src/autograd/tape.ts';
import { tidy } from '../src/tensor/tidy.ts';
import { EDM } from '../src/diffusion/ve.ts';
import { EpgModel } from '../src/methods/epg/model.ts';
import { sampleEpg } from '../src/methods/epg/sampler.ts';
import { writePngGrid } from '../src/io/png.ts';
import { gridAccuracy } from '../src/eval/gridAccuracy.ts';

const { values: a } = parseArgs({ options: {
  checkpoint: { type: 'string' }, out: { type: 'string', default: 'docs/studies/epg-long' }, images: { type: 'string', default: '200' },
  starts: { type: 'string', default: '80,20,10,5' }, json: { type: 'string' },
} });
if (!a.checkpoint) throw new Error('--checkpoint: give an EPG checkpoint of stage diffusion, e.g. runs/epg-long-seed0/checkpoint.safetensors');
const c = loadCheckpointWith(a.checkpoint, []);
const epg = (c.spec as unknown as { epg?: { stage: string; p_mean: number; p_std: number; guidance_sigma: [number, number] } }).epg;
if (!epg || epg.stage !== 'diffusion') throw new Error(`${a.checkpoint}: not an EPG checkpoint of stage diffusion (its spec's epg.stage is ${epg?.stage ?? 'missing'})`);
const model = samplingModel(c.spec, c.config, pickWeights(c, a.checkpoint, undefined, 'ema', '--raw'));
if (!(model instanceof EpgModel)) throw new Error(`${a.checkpoint}: the weights did not build an EpgModel`);
const cfg = c.config, shift = cfg.inputSize / 64, n = Number(a.images);
const test = openDataset(c.spec.data.dataset, { split: 'test', size: c.spec.data.size });
const train = openDataset(c.spec.data.dataset, { split: 'train', size: c.spec.data.size });
const S = sampleSize(test);

// The class-mean images of the training set.
const means = new Float64Array(cfg.numClasses * S), counts = new Float64Array(cfg.numClasses), buf = new Float32Array(S);
for (let i = 0; i < train.count; i++) {
  const y = train.get(i, buf, 0);
  counts[y]++;
  for (let j = 0; j < S; j++) means[y * S + j] += buf[j];
}
for (let k = 0; k < cfg.numClasses; k++) for (let j = 0; j < S; j++) means[k * S + j] /= counts[k];

const x = new Float32Array(n * S), labels = new Int32Array(n);
for (let i = 0; i < n; i++) labels[i] = test.get(i, x, i * S);
const normalCdf = (z: number): number => 0.5 * (1 + erf(z / Math.SQRT2));
function erf(v: number): number { // Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7)
  const s = Math.sign(v), t = 1 / (1 + 0.3275911 * Math.abs(v));
  return s * (1 - (((((1.061405429 * t - 1.453152073) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-v * v));
}

const sigmas = [80, 40, 20, 10, 5, 2, 1, 0.5, 0.2, 0.05, 0.01].map((s) => s * shift);
const rows: { sigma: number; mseD: number; mseClassMean: number; mseInput: number; trainShareAbove: number }[] = [];
const rng = new Rng(1234);
const denoised: Float32Array[] = [];
noGrad(() => {
  // Each σ's forward in its own tidy (its activations back to the pool), in batches of 50 images.
  for (const sigma of sigmas) tidy(() => {
    const eps = rng.child(`eps${sigma}`).normal([n, cfg.inChannels, cfg.inputSize, cfg.inputSize]);
    const xs = new Float32Array(n * S);
    for (let j = 0; j < n * S; j++) xs[j] = x[j] + sigma * eps.data[j];
    const d = { data: new Float32Array(n * S) };
    for (let lo = 0; lo < n; lo += 50) tidy(() => {
      const b = Math.min(50, n - lo);
      const out = model.denoise(tensor(xs.slice(lo * S, (lo + b) * S), [b, cfg.inChannels, cfg.inputSize, cfg.inputSize]), new Float64Array(b).fill(sigma), labels.slice(lo, lo + b));
      d.data.set(out.data, lo * S);
    });
    let eD = 0, eM = 0, eI = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < S; j++) {
      const t = x[i * S + j], dv = Math.max(-1, Math.min(1, d.data[i * S + j]));
      eD += (dv - t) ** 2; eM += (means[labels[i] * S + j] - t) ** 2; eI += (Math.max(-1, Math.min(1, xs[i * S + j])) - t) ** 2;
    }
    denoised.push(Float32Array.from(d.data.subarray(0, 8 * S), (v) => Math.max(-1, Math.min(1, v))));
    const z = (Math.log(sigma / shift) - epg.p_mean) / epg.p_std;
    rows.push({ sigma, mseD: eD / (n * S), mseClassMean: eM / (n * S), mseInput: eI / (n * S), trainShareAbove: 1 - normalCdf(z) });
  });
});
mkdirSync(a.out, { recursive: true });
// One row per σ: D of the first 8 test images; the last row the images themselves.
const grid = new Float32Array((sigmas.length + 1) * 8 * S);
denoised.forEach((d, r) => grid.set(d, r * 8 * S));
grid.set(x.subarray(0, 8 * S), sigmas.length * 8 * S);
writePngGrid(path.join(a.out, 'denoiser.png'), grid, (sigmas.length + 1) * 8, cfg.inChannels, cfg.inputSize, cfg.inputSize, 8);

console.log(`${a.checkpoint} (step ${c.state.step}), ${n} test images; σ as the sampler uses them (shift ${shift})`);
console.log('| σ | MSE of D | MSE of the class mean | MSE of the clamped input | training draws at ≥ σ |');
console.log('| ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(`| ${r.sigma.toPrecision(3)} | ${r.mseD.toFixed(4)} | ${r.mseClassMean.toFixed(4)} | ${r.mseInput.toFixed(4)} | ${(100 * r.trainShareAbove).toPrecision(3)} % |`);

const per = 8, gridLabels = Array.from({ length: cfg.numClasses * per }, (_, i) => Math.floor(i / per));
const sample = c.spec.sample;
const starts: { sigmaMax: number; accuracy: number | null; file: string }[] = [];
for (const sMax of String(a.starts).split(',').map(Number)) {
  const noise = new Rng(c.spec.seed).child('epg-denoiser-grid').normal([gridLabels.length, cfg.inChannels, cfg.inputSize, cfg.inputSize]);
  const imgs = sampleEpg((xx, sig, l) => model.denoise(xx, sig, l), noise, Int32Array.from(gridLabels), {
    steps: sample.steps, heun: sample.sampler === 'heun', shift, grid: { ...EDM, sigmaMax: sMax },
    cfg: sample.cfg, nullClass: cfg.numClasses, interval: epg.guidance_sigma,
  });
  const file = path.join(a.out, `samples-sigmamax${sMax}.png`);
  writePngGrid(file, imgs.data as Float32Array, gridLabels.length, cfg.inChannels, cfg.inputSize, cfg.inputSize, per);
  const g = gridAccuracy(c.spec, c.spec.data.dataset, imgs.data as Float32Array, gridLabels, cfg.inChannels, cfg.inputSize);
  starts.push({ sigmaMax: sMax * shift, accuracy: g?.accuracy ?? null, file });
  console.log(`start σ_max ${sMax}·${shift} = ${sMax * shift}: grid class accuracy ${g ? g.accuracy.toFixed(3) : 'not measured'} (${file})`);
}
if (a.json) writeFileSync(a.json, `${JSON.stringify({ checkpoint: a.checkpoint, step: c.state.step, images: n, shift, rows, starts }, null, 1)}\n`);
