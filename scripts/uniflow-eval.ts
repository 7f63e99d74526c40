// UniFlow's claim, measured (issue 13 item 4; docs/methods.md, "UniFlow"): one tokenizer that keeps
// the encoder's understanding and reconstructs well. For a trained UniFlow checkpoint (its EMA
// weights) this reports
//   - the linear probe (eval/linearProbe.ts, as the stand-in encoder's own probe: logistic regression
//     on z-scored mean patch tokens and on class tokens) of the STUDENT E_U beside the frozen TEACHER
//     E_T (the spec's encoder), trained on the first --train-images training images, tested on the
//     first --test-images test images;
//   - reconstruction error (MSE in [−1, 1], PSNR in [0, 1]; rae/recon.ts) of the first --recon-images
//     test images: UniFlow's decode in --steps Euler steps (1: the paper's one step) from seeded
//     noise, beside the shipped VAE (--vae, posterior mean) and an RAE stage-1 run (--rae).
//   npx tsx scripts/uniflow-eval.ts --checkpoint runs/uniflow/checkpoint.safetensors \
//     [--vae specs/standins/vae-fashion-mnist.safetensors] [--rae runs/rae-decoder/checkpoint.safetensors] \
//     [--train-images 10000] [--test-images 10000] [--recon-images 1000] [--steps 1] [--json FILE]
// It computes; the values belong to the lead's study (docs/results.md), not to this file.
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { loadCheckpoint } from '../src/build/checkpoint.ts';
import { buildEncoder, samplingModel } from '../src/build/parts.ts';
import { openDataset } from '../src/data/open.ts';
import type { ImageDataset } from '../src/data/index.ts';
import { loadSdVae } from '../src/models/sdVae.ts';
import { linearProbe } from '../src/eval/linearProbe.ts';
import type { RunSpec } from '../src/spec/schema.ts';
import { UniFlowModel } from '../src/methods/uniflow/model.ts';
import { studentTokens, teacherTokens, tokenFeatures, uniflowReconstruct, type TokenEncoder } from '../src/methods/uniflow/measure.ts';
import { RaeDecoderModel } from '../src/methods/rae/model.ts';
import { raeReconstruct, reconstructionError, vaeReconstruct, type ReconError } from '../src/methods/rae/recon.ts';

export interface UniflowEvalOptions {
  checkpoint: string;
  vae?: string;
  rae?: string;
  trainImages: number;
  testImages: number;
  reconImages: number;
  steps: number;
}

export interface ProbePair { patchMean: number; cls: number }

export interface UniflowEvalReport {
  checkpoint: string;
  step: number;
  probe: { trainImages: number; testImages: number; student: ProbePair; teacher: ProbePair };
  recon: { uniflow: ReconError & { steps: number }; vae?: ReconError & { file: string }; rae?: ReconError & { file: string } };
}

function split(spec: RunSpec, which: 'train' | 'test'): ImageDataset {
  const d = spec.data;
  return openDataset(d.dataset, { split: which, size: d.size, ...(d.dataset === 'builtin' && { count: d.builtin_count }) });
}

function probe(encode: TokenEncoder, train: ImageDataset, test: ImageDataset, nTrain: number, nTest: number): ProbePair {
  const a = tokenFeatures(encode, train, nTrain), b = tokenFeatures(encode, test, nTest);
  const run = (k: 'patchMean' | 'cls') => linearProbe({ trainX: a[k], trainY: a.labels, testX: b[k], testY: b.labels, numClasses: train.numClasses, dim: a.dim }).accuracy;
  return { patchMean: run('patchMean'), cls: run('cls') };
}

export function uniflowEval(o: UniflowEvalOptions): UniflowEvalReport {
  const c = loadCheckpoint(o.checkpoint);
  const model = samplingModel(c.spec, c.config, c.ema);
  if (!(model instanceof UniFlowModel)) throw new Error(`${o.checkpoint} is not a UniFlow checkpoint (its spec lists ${c.spec.methods.join(', ')})`);
  model.eval();
  const train = split(c.spec, 'train'), test = split(c.spec, 'test');
  const teacher = buildEncoder(c.spec, test, c.config);
  const report: UniflowEvalReport = {
    checkpoint: o.checkpoint,
    step: c.state.step,
    probe: {
      trainImages: Math.min(o.trainImages, train.count), testImages: Math.min(o.testImages, test.count),
      student: probe(studentTokens(model), train, test, o.trainImages, o.testImages),
      teacher: probe(teacherTokens(teacher), train, test, o.trainImages, o.testImages),
    },
    recon: { uniflow: { ...reconstructionError(uniflowReconstruct(model, c.spec.seed, o.steps), test, o.reconImages), steps: o.steps } },
  };
  if (o.vae) report.recon.vae = { ...reconstructionError(vaeReconstruct(loadSdVae(o.vae).eval()), test, o.reconImages), file: o.vae };
  if (o.rae) {
    const r = loadCheckpoint(o.rae), dec = samplingModel(r.spec, r.config, r.ema);
    if (!(dec instanceof RaeDecoderModel)) throw new Error(`--rae ${o.rae} is not an RAE stage-1 checkpoint (its spec lists ${r.spec.methods.join(', ')})`);
    report.recon.rae = { ...reconstructionError(raeReconstruct(dec.eval(), buildEncoder(r.spec, test, r.config)), test, o.reconImages), file: o.rae };
  }
  return report;
}

function main(): void {
  const { values: a } = parseArgs({
    options: {
      checkpoint: { type: 'string' }, vae: { type: 'string' }, rae: { type: 'string' }, json: { type: 'string' },
      'train-images': { type: 'string', default: '10000' }, 'test-images': { type: 'string', default: '10000' },
      'recon-images': { type: 'string', default: '1000' }, steps: { type: 'string', default: '1' },
    },
  });
  if (!a.checkpoint) throw new Error('--checkpoint RUN/checkpoint.safetensors is required (a uniflow run)');
  const int = (k: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${k} must be a positive integer, got '${v}'`);
    return n;
  };
  const r = uniflowEval({
    checkpoint: a.checkpoint, vae: a.vae, rae: a.rae, steps: int('steps', a.steps!),
    trainImages: int('train-images', a['train-images']!), testImages: int('test-images', a['test-images']!), reconImages: int('recon-images', a['recon-images']!),
  });
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const rec = (what: string, e: ReconError) => `${what}: ${e.images} test images, MSE ${e.mse.toFixed(5)}, PSNR ${e.psnr.toFixed(2)} dB`;
  console.log(`UniFlow ${r.checkpoint} (EMA, step ${r.step})`);
  console.log(`linear probe (${r.probe.trainImages} train / ${r.probe.testImages} test images): student mean patch ${pct(r.probe.student.patchMean)}, cls ${pct(r.probe.student.cls)}; teacher mean patch ${pct(r.probe.teacher.patchMean)}, cls ${pct(r.probe.teacher.cls)}`);
  console.log(rec(`UniFlow (${r.recon.uniflow.steps} Euler step${r.recon.uniflow.steps > 1 ? 's' : ''})`, r.recon.uniflow));
  if (r.recon.vae) console.log(rec(`VAE (${r.recon.vae.file}, posterior mean)`, r.recon.vae));
  if (r.recon.rae) console.log(rec(`RAE decoder (${r.recon.rae.file}, EMA)`, r.recon.rae));
  if (a.json) writeFileSync(a.json, `${JSON.stringify(r, null, 1)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
