// Helper for gemm-threads.test.ts (plain JS so workers and child processes start without tsx):
// a fixed list of GEMMs over inputs made from fixed seeds, run against the addon at a given path.
// As a worker thread: waits on a shared start barrier, runs the list `reps` times and leaves the
// last results in workerData.out. As a child process (`node thisfile --child <addon> <outfile>`):
// runs the list once and writes the results' bytes to <outfile>. Checks nothing itself.
import { createRequire } from 'node:module';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { writeFileSync } from 'node:fs';

// [m, n, k, transA, transB, batch, beta, bias, act]: threaded, small-m (split over n), batched
// (one task per matrix), inline, and multi-slice-k cases.
export const CASES = [
  [300, 200, 520, false, false, 1, 0, true, 2],
  [257, 190, 300, true, true, 1, 0.5, false, 4],
  [33, 500, 260, true, false, 1, 0, true, 1],
  [40, 50, 30, false, true, 16, 1, true, 3],
  [64, 64, 64, false, false, 1, 0, false, 0],
  [700, 96, 96, false, false, 1, 0, true, 0],
];

function fill(arr, seed) {
  let s = seed >>> 0;
  for (let i = 0; i < arr.length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    arr[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  }
  return arr;
}

/** Total length of all cases' outputs, in floats. */
export function outputLength() {
  return CASES.reduce((s, [m, n, , , , batch]) => s + m * n * batch, 0);
}

/** Runs every case once; results go to consecutive slices of `out` (a Float32Array). */
export function runCases(addon, out, inputs = makeInputs()) {
  let off = 0;
  CASES.forEach(([m, n, k, tA, tB, batch, beta, , act], i) => {
    const { a, b, bias, c0 } = inputs[i];
    const c = out.subarray(off, off + m * n * batch);
    c.set(c0);
    addon.gemm(tA, tB, m, n, k, 1, a, tA ? m : k, m * k, b, tB ? k : n, k * n, beta, c, n, m * n, batch, bias, act);
    off += m * n * batch;
  });
}

export function makeInputs() {
  return CASES.map(([m, n, k, , , batch, , hasBias], i) => ({
    a: fill(new Float32Array(m * k * batch), 10 * i + 1),
    b: fill(new Float32Array(k * n * batch), 10 * i + 2),
    bias: hasBias ? fill(new Float32Array(n), 10 * i + 3) : null,
    c0: fill(new Float32Array(m * n * batch), 10 * i + 4),
  }));
}

if (!isMainThread) {
  const { addonPath, out, barrier, workers, reps } = workerData;
  const addon = createRequire(import.meta.url)(addonPath);
  const inputs = makeInputs();
  const gate = new Int32Array(barrier);
  // Start together so the calls really overlap.
  if (Atomics.add(gate, 0, 1) + 1 === workers) Atomics.notify(gate, 0);
  while (Atomics.load(gate, 0) < workers) Atomics.wait(gate, 0, Atomics.load(gate, 0), 50);
  for (let r = 0; r < reps; r++) runCases(addon, new Float32Array(out), inputs);
  parentPort.postMessage('done');
} else if (process.argv[2] === '--child') {
  const addon = createRequire(import.meta.url)(process.argv[3]);
  const out = new Float32Array(outputLength());
  runCases(addon, out);
  writeFileSync(process.argv[4], Buffer.from(out.buffer));
}
