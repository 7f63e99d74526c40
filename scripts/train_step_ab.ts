// One SiT training step (src/bench/trainStepCore.ts), this checkout against another build of the
// project — e.g. the commit before a kernel change, exported with `git archive <commit> src native
// package.json tsconfig.json | tar -x -C <dir>`, `node_modules` linked and its addon built there
// (`node scripts/build-native.js --force` in <dir> after also exporting scripts/build-native.js).
// Each side is a live child process (its own src and addon) that runs one step per request; the
// driver alternates new fp32, base fp32, new bf16, base bf16 (first mover rotating) so load from
// other jobs hits all four alike, and reports per-side medians of wall time and of the child's CPU
// time (process.cpuUsage; with DIFFACTOR_THREADS=1 the one thread's work). Measures and prints;
// asserts nothing.
//   npx tsx scripts/train_step_ab.ts --base <dir> [P1|P2] [steps] [warmup]
// The child mode (`--serve <P1|P2>`) is this file run from either tree.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const argv = process.argv.slice(2);
const serveAt = argv.indexOf('--serve');

if (serveAt >= 0) {
  // Child: import this tree's harness (relative to the tree root given by the caller's cwd).
  const root = process.cwd();
  const { createTrainStep } = await import(path.join(root, 'src/bench/trainStepCore.ts'));
  const { sitPreset } = await import(path.join(root, 'src/models/presets.ts'));
  const { TRAIN_STEP_CONFIGS } = await import(path.join(root, 'src/bench/trainStep.ts'));
  const tc = (TRAIN_STEP_CONFIGS as { config: string; preset: string; batch: number }[]).find((c) => c.config === argv[serveAt + 1]);
  if (!tc) throw new Error(`--serve: expected P1 or P2, got '${argv[serveAt + 1]}'`);
  const cfg = sitPreset(tc.preset);
  const h = { fp32: createTrainStep(cfg, tc.batch, 0, 'fp32'), bf16: createTrainStep(cfg, tc.batch, 0, 'bf16') };
  const rl = createInterface({ input: process.stdin });
  process.stdout.write('ready\n');
  for await (const line of rl) {
    const p = line.trim() as 'fp32' | 'bf16';
    if (p !== 'fp32' && p !== 'bf16') break;
    const u0 = process.cpuUsage(), t0 = performance.now();
    const loss = h[p].step();
    const wall = (performance.now() - t0) / 1000, u = process.cpuUsage(u0);
    process.stdout.write(`${JSON.stringify({ wall, cpu: (u.user + u.system) / 1e6, loss })}\n`);
  }
  process.exit(0);
}

const baseAt = argv.indexOf('--base');
const baseDir = baseAt >= 0 ? argv[baseAt + 1] : undefined;
if (!baseDir) throw new Error('--base <dir>: expected a tree with src/ and a built native addon');
const rest = argv.filter((_, i) => i !== baseAt && i !== baseAt + 1);
const config = rest[0] ?? 'P1', steps = Number(rest[1] ?? 10), warmup = Number(rest[2] ?? 2);
const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);

interface Child { ask(p: string): Promise<{ wall: number; cpu: number; loss: number }>; close(): void }
async function child(root: string): Promise<Child> {
  const proc = spawn(process.execPath, ['--import', 'tsx', self, '--serve', config], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const next = async () => { const r = await lines.next(); if (r.done) throw new Error(`child in ${root} exited`); return r.value; };
  if ((await next()) !== 'ready') throw new Error(`child in ${root} did not start`);
  return {
    ask: async (p) => { proc.stdin.write(`${p}\n`); return JSON.parse(await next()); },
    close: () => proc.stdin.end('quit\n'),
  };
}

const loadStart = os.loadavg();
const sides = { new: await child(here), base: await child(path.resolve(baseDir)) };
const order: [keyof typeof sides, 'fp32' | 'bf16'][] = [['new', 'fp32'], ['base', 'fp32'], ['new', 'bf16'], ['base', 'bf16']];
const times: Record<string, { wall: number[]; cpu: number[]; loss: number[] }> = {};
for (let s = 0; s < warmup + steps; s++) {
  for (let j = 0; j < order.length; j++) {
    const [side, p] = order[(j + s) % order.length];
    const r = await sides[side].ask(p);
    if (s < warmup) continue;
    const t = times[`${side} ${p}`] ?? (times[`${side} ${p}`] = { wall: [], cpu: [], loss: [] });
    t.wall.push(r.wall); t.cpu.push(r.cpu); t.loss.push(r.loss);
  }
}
sides.new.close(); sides.base.close();
const median = (x: number[]) => { const s = [...x].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const m = (k: string, f: 'wall' | 'cpu') => median(times[k][f]);
console.log(`${config}, ${steps} steps per side after ${warmup} warm-up, threads ${process.env.DIFFACTOR_THREADS ?? 'pool'}, load average ${loadStart.map((x) => x.toFixed(2)).join(' ')} -> ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log('| precision | new wall s | base wall s | base / new | new CPU s | base CPU s | base / new |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const p of ['fp32', 'bf16']) {
  const nw = m(`new ${p}`, 'wall'), bw = m(`base ${p}`, 'wall'), nc = m(`new ${p}`, 'cpu'), bc = m(`base ${p}`, 'cpu');
  console.log(`| ${p} | ${nw.toFixed(3)} | ${bw.toFixed(3)} | ${(bw / nw).toFixed(2)} | ${nc.toFixed(3)} | ${bc.toFixed(3)} | ${(bc / nc).toFixed(2)} |`);
}
console.log(`fp32 / bf16 (new): wall ${(m('new fp32', 'wall') / m('new bf16', 'wall')).toFixed(2)}, CPU ${(m('new fp32', 'cpu') / m('new bf16', 'cpu')).toFixed(2)}; (base): wall ${(m('base fp32', 'wall') / m('base bf16', 'wall')).toFixed(2)}, CPU ${(m('base fp32', 'cpu') / m('base bf16', 'cpu')).toFixed(2)}`);
const same = ['fp32', 'bf16'].every((p) => times[`new ${p}`].loss.every((l, i) => l === times[`base ${p}`].loss[i]));
console.log(`losses new = base, step by step, bit for bit: ${same}`);
