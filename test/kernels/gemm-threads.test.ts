// The native GEMM from several JS threads at once: 4 worker_threads load the addon and run the same
// GEMMs (threaded, split-over-n, batched, inline sizes) concurrently through the one shared pool;
// every result must be bit-identical to a run on this thread alone and to a run in a child process
// whose pool has a single thread (DIFFACTOR_THREADS=1). Numerical correctness is gemm.test.ts's job.
import { describe, it, expect } from 'vitest';
import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addonPath, loadAddon } from '../../src/kernels/native.ts';
// @ts-expect-error plain .mjs helper without type declarations
import { outputLength, runCases } from './gemm-threads.worker.mjs';

const workerFile = fileURLToPath(new URL('./gemm-threads.worker.mjs', import.meta.url));
const { addon, reason } = loadAddon();

function firstDifference(what: string, got: Float32Array, want: Float32Array): string | null {
  const gi = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const wi = new Uint32Array(want.buffer, want.byteOffset, want.length);
  let count = 0, first = -1, maxDiff = 0;
  for (let i = 0; i < gi.length; i++) {
    if (gi[i] !== wi[i]) {
      if (first < 0) first = i;
      count++;
      maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
    }
  }
  if (first < 0) return null;
  return `${what}: ${count} of ${got.length} values differ in their bits, max diff ${maxDiff}; first at [${first}]: ` +
    `${got[first]} vs ${want[first]}; got ${Array.from(got.subarray(first, first + 4)).join(', ')}`;
}

describe.skipIf(!addon)(`native gemm across JS threads${addon ? '' : ` (skipped: ${reason})`}`, () => {
  it('4 workers at once give bit-identical results to one thread and to a 1-thread pool', async () => {
    const len: number = outputLength();
    const single = new Float32Array(len);
    runCases(addon!, single);
    let energy = 0;
    for (const v of single) energy += Math.abs(v);
    expect(Number.isFinite(energy) && energy > 0, 'reference run produced zeros or NaN').toBe(true);

    const workers = 4;
    const barrier = new SharedArrayBuffer(4);
    const outs = Array.from({ length: workers }, () => new SharedArrayBuffer(len * 4));
    await Promise.all(outs.map((out) => new Promise<void>((resolve, reject) => {
      const w = new Worker(workerFile, { workerData: { addonPath, out, barrier, workers, reps: 3 } });
      w.once('message', () => { void w.terminate(); resolve(); });
      w.once('error', reject);
      w.once('exit', () => resolve()); // a worker that died early leaves zeros: caught below
    })));
    const problems = outs.map((o, i) => firstDifference(`worker ${i}`, new Float32Array(o), single)).filter(Boolean);

    const dir = mkdtempSync(path.join(tmpdir(), 'diffactor-gemm-'));
    try {
      const file = path.join(dir, 'out.bin');
      const r = spawnSync(process.execPath, [workerFile, '--child', addonPath, file], {
        env: { ...process.env, DIFFACTOR_THREADS: '1' }, encoding: 'utf8',
      });
      expect(r.status, `child failed: ${r.stderr}`).toBe(0);
      const buf = readFileSync(file);
      const child = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
      problems.push(firstDifference('1-thread pool (child process)', child, single));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(problems.filter(Boolean)).toEqual([]);
  });
});
