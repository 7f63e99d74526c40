// The SiT training step (src/bench/trainStepCore.ts: forward, loss, backward, AdamW, EMA) of P1 and
// P2 in fp32 and bf16 by CPU time of this process, the variants interleaved step by step, median
// of each. With DIFFACTOR_THREADS=1 the addon's pool runs inline, so process.cpuUsage is one
// thread's time and does not count the time other jobs hold the core (the point of it on a shared
// machine; caches and the other hyperthread are still shared). DIFFACTOR_BASE_TREE=<dir> adds the
// same step from another checkout (its own src/ and native/build addon, e.g. an earlier commit
// unpacked with git archive) to the same rotation as "before" rows. Measures and prints; asserts
// nothing. Not here: the PyTorch peers, wall time on both threads (`diffactor bench train-step`).
// Each config's harnesses live at once (P2: about 1.5 GB each), so `--precision fp32|bf16` and
// `--config P1|P2` cut the rotation on a machine short of memory.
//   DIFFACTOR_THREADS=1 npx tsx scripts/train_step_cpu_time.ts [--steps-p1 7] [--steps-p2 4] [--config P2] [--precision bf16]
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { sitPreset } from '../src/models/presets.ts';
import { createTrainStep } from '../src/bench/trainStepCore.ts';
import { loadAddon } from '../src/kernels/native.ts';

type Create = typeof createTrainStep;
const baseTree = process.env.DIFFACTOR_BASE_TREE;
const baseCreate: Create | null = baseTree
  ? (await import(pathToFileURL(path.join(path.resolve(baseTree), 'src/bench/trainStepCore.ts')).href)).createTrainStep
  : null;
const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
};
const configs = [
  { name: 'P1', preset: 'SiT-P1', batch: 64, steps: Number(arg('steps-p1', '7')) },
  { name: 'P2', preset: 'SiT-P2', batch: 16, steps: Number(arg('steps-p2', '4')) },
].filter((c) => arg('config', c.name) === c.name);
const precisions = (['fp32', 'bf16'] as const).filter((p) => arg('precision', p) === p);
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)];
console.log(`load average ${load()}, threads ${process.env.DIFFACTOR_THREADS ?? 'all (CPU time then sums threads)'}, isa ${loadAddon().addon?.isa() ?? 'js'}${baseTree ? `, before: ${baseTree}` : ''}`);
console.log('| config | variant | CPU s/step (median) | steps | loss after |');
console.log('| --- | --- | ---: | ---: | ---: |');
for (const c of configs) {
  const cfg = sitPreset(c.preset);
  const variants: { name: string; h: ReturnType<Create> }[] = [];
  for (const p of precisions) {
    if (baseCreate) variants.push({ name: `before ${p}`, h: baseCreate(cfg, c.batch, 0, p) });
    variants.push({ name: `now ${p}`, h: createTrainStep(cfg, c.batch, 0, p) });
  }
  for (const v of variants) v.h.step(); // warm-up: pools, scratch
  const times = variants.map(() => [] as number[]), loss = variants.map(() => NaN);
  for (let s = 0; s < c.steps; s++) {
    variants.forEach((v, i) => {
      const u0 = process.cpuUsage().user;
      loss[i] = v.h.step();
      times[i].push((process.cpuUsage().user - u0) / 1e6);
    });
  }
  variants.forEach((v, i) => console.log(`| ${c.name} | ${v.name} | ${median(times[i]).toFixed(3)} | ${c.steps} | ${loss[i].toFixed(7)} |`));
}
console.log(`load average ${load()}`);
