// `diffactor train`: run a spec on the reference trainer (actors come with the protocols issue).
import path from 'node:path';
import { existsSync, renameSync } from 'node:fs';
import { loadSpec } from '../spec/load.ts';
import { runTraining } from '../train/run.ts';
import { backendInfo } from '../kernels/index.ts';

export interface TrainCliOptions { spec?: string; steps?: number; out?: string; data?: string; resume?: string; samples?: boolean; fresh?: boolean }

export function train(o: TrainCliOptions): void {
  if (!o.spec && !o.resume) throw new Error('train: pass --spec FILE, or --resume DIR to continue a run');
  const spec = o.spec ? loadSpec(o.spec) : undefined;
  const out = o.resume ?? o.out ?? path.join('runs', spec!.name);
  if (o.fresh && !o.resume && existsSync(out)) {
    const aside = `${out}.${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(out, aside);
    console.error(`--fresh: moved the previous run in ${out} to ${aside}`);
  }
  console.error(`diffactor train: ${spec ? spec.name : `resuming ${out}`} → ${out}  (kernels: ${backendInfo.backend}${backendInfo.backend === 'native' ? `/${backendInfo.isa}` : ''})`);
  const r = runTraining({ spec, out, data: o.data, steps: o.steps, resume: !!o.resume, samples: o.samples });
  const last = r.logs.at(-1);
  console.error(`done: step ${r.trainer.step}${last ? `, loss ${last.loss.toFixed(4)}` : ''}; wrote ${path.join(out, 'checkpoint.safetensors')}, metrics.jsonl${o.samples === false ? '' : ', samples.png'}`);
}
