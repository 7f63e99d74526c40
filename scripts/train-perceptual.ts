// Train the perceptual loss's feature net (the LPIPS VGG stand-in, docs/models/perceptual.md) and
// write its safetensors (default: the shipped specs/standins/perceptual-<data>.safetensors).
//   npx tsx scripts/train-perceptual.ts --data fashion-mnist [--epochs 1 | --steps N] [--lr 3e-3] [--seed 1] [--out FILE]
//   npx tsx scripts/train-perceptual.ts --data builtin --epochs 3
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { backendInfo } from '../src/kernels/index.ts';
import { STANDIN_DATA, type StandinData } from '../src/standins/classifier.ts';
import { defaultPerceptualFile, savePerceptualNet, trainPerceptualNet } from '../src/standins/perceptual.ts';

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', default: 'fashion-mnist' },
    epochs: { type: 'string' },
    steps: { type: 'string' },
    seed: { type: 'string' },
    lr: { type: 'string' },
    out: { type: 'string' },
  },
});
const data = a.data as StandinData;
if (!STANDIN_DATA.includes(data)) throw new Error(`--data must be one of ${STANDIN_DATA.join(', ')}, got '${a.data}'`);
const int = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number.parseInt(v, 10));
const out = a.out ?? defaultPerceptualFile(data);
mkdirSync(path.dirname(out), { recursive: true });
console.error(`train-perceptual: ${data} → ${out}  (kernels: ${backendInfo.backend}${backendInfo.backend === 'native' ? `/${backendInfo.isa}, ${backendInfo.threads} threads` : ''})`);
let last = 0;
const t = trainPerceptualNet({
  data, epochs: int(a.epochs), steps: int(a.steps), seed: int(a.seed), lr: a.lr === undefined ? undefined : Number(a.lr),
  onStep: (step, total, f) => {
    const now = performance.now();
    if (step === total || now - last > 10_000) {
      last = now;
      console.error(`step ${step}/${total}  loss ${f.loss.toFixed(4)}  acc ${(100 * f.acc).toFixed(1)}%  lr ${f.lr.toExponential(2)}`);
    }
  },
});
const argv = process.argv.slice(2).join(' ');
t.metadata.command = `npx tsx scripts/train-perceptual.ts ${argv || `--data ${data}`}`;
savePerceptualNet(out, t);
console.error(`${t.steps} steps in ${(t.trainSeconds / 60).toFixed(1)} min; test accuracy ${(100 * t.testAccuracy).toFixed(2)}% on ${t.testCount} images; wrote ${path.relative(process.cwd(), out) || out}`);
