// The sampling pool: a piscina pool of worker threads that draws a sample grid in chunks, the
// stateless fan-out of issue 4. sampleGrid returns exactly — bit for bit — what drawSamples
// (src/build/draw.ts) returns in-process for the same model, settings, seed and labels: each chunk
// is a run of rows inside one of drawSamples' model batches, drawn with that batch's random
// streams restricted to its rows (sampleTask.ts RowRng); the model's rows do not interact.
// Weights and the output cross as views of SharedArrayBuffers (shared, never copied). Not here:
// the sampling itself (drawBatch), stateful actors (plain worker_threads, see STYLE.md).
import { Piscina } from 'piscina';
import type { Tensor } from '../tensor/tensor.ts';
import { SharedBuffer, hasSharedMemory } from '../tensor/sab.ts';
import { parseSiTConfig, type SiTConfig } from '../models/config.ts';
import type { SampleSettings } from '../build/draw.ts';
import type { RunSpec } from '../spec/schema.ts';
import type { SampleTask, SampleTaskResult } from './sampleTask.ts';
import { workerBundle } from '../util/tsWorker.ts';

// A .mjs entry registers tsx inside each worker before importing the TypeScript task; where the
// task is pre-bundled (DIFFACTOR_WORKER_BUNDLES, src/util/tsWorker.ts) the workers load its bundle.
const entry = new URL('../../workers/sampleTask.mjs', import.meta.url);
const task = new URL('../../workers/sampleTask.ts', import.meta.url);

export interface SamplePoolOptions {
  /** Worker threads (default 2: the machine's cores). */
  threads?: number;
}

let pools = 0;

export class SamplePool {
  readonly threads: number;
  /** Distinguishes this pool's default weight versions from another pool's. */
  readonly id = `pool${++pools}`;
  private readonly piscina: Piscina;
  private calls = 0;
  private closed = false;

  constructor(o: SamplePoolOptions = {}) {
    const threads = o.threads ?? 2;
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`SamplePool: threads must be a positive integer, got ${threads}`);
    // Workers write their images into the caller's buffer: without shared memory they would be lost.
    if (!hasSharedMemory) throw new Error('SamplePool: needs SharedArrayBuffer (workers write the images into shared memory)');
    this.threads = threads;
    this.piscina = new Piscina({
      filename: workerBundle(task) ?? entry.href,
      minThreads: threads,
      maxThreads: threads,
      // Idle workers wait on their event loop, not parked in Atomics.wait (STYLE.md): chunks
      // take milliseconds to seconds, so the cheaper wake-up of 'sync' buys nothing here.
      atomics: 'disabled',
    });
    // piscina reports a worker that failed outside any task as an 'error' event (and replaces the
    // worker); unheard, the event would crash the process. Say it and keep it for the caller.
    this.piscina.on('error', (e: Error) => {
      this.workerErrors.push(e);
      process.stderr.write(`SamplePool: a worker failed outside any task (replaced): ${e.message}\n`);
    });
  }

  /** Worker failures piscina raised outside any task; the pool went on with a fresh worker. */
  readonly workerErrors: Error[] = [];

  /** A version no other call of any pool uses: the weights are reloaded once per worker. */
  nextVersion(): string {
    return `${this.id}:${++this.calls}`;
  }

  /** Totals over settled tasks: finished, failed, images drawn, models built, weight loads (one per worker and version when cached). */
  readonly stats = { tasks: 0, failed: 0, images: 0, builds: 0, loads: 0 };

  /** Run one task; rejects with the task's error. */
  async run(task: SampleTask): Promise<SampleTaskResult> {
    if (this.closed) throw new Error('SamplePool: the pool is closed');
    let r: SampleTaskResult;
    try {
      r = await this.piscina.run(task) as SampleTaskResult;
    } catch (e) {
      this.stats.failed++;
      throw e;
    }
    this.stats.tasks++;
    this.stats.images += r.images;
    if (r.built) this.stats.builds++;
    if (r.loaded) this.stats.loads++;
    return r;
  }

  /** Stop the workers; queued tasks reject. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.piscina.destroy();
  }
}

export interface SampleGridOptions {
  config: SiTConfig;
  /** The state dict to sample with (usually the EMA), by name. Float32 SharedArrayBuffer views are shared as they are. */
  weights: Map<string, Tensor>;
  sampleSpec: SampleSettings;
  seed: number;
  /** One image per label, in this order (gridLabels makes a class-per-row grid). */
  labels: readonly number[];
  /** The run's spec when the weights are not a plain SiT/DiT's (its methods build the model, e.g. REG's). */
  spec?: RunSpec;
  /** drawSamples' model batch (default 100, as drawSamples): it fixes the random streams, so pass the same value. */
  batch?: number;
  /** Labels per pool task (default: about two tasks per thread); a chunk never spans two batches. */
  chunk?: number;
  /**
   * A caller that samples the same weights again may pass the same version so that workers skip
   * reloading them; default a fresh version per call. The weights must not change while sampling.
   */
  weightsVersion?: string;
  /** Called after each finished chunk. */
  onProgress?: (done: number, total: number) => void;
}

/** Rows [row0, row0 + n) of batch k, at label index start. */
interface Chunk { k: number; rows: number; row0: number; start: number; n: number }

/** Split labels into chunks of at most `chunk`, each inside one model batch of `batch`. */
export function planChunks(total: number, batch: number, chunk: number): Chunk[] {
  const out: Chunk[] = [];
  for (let k = 0; k * batch < total; k++) {
    const rows = Math.min(batch, total - k * batch);
    for (let row0 = 0; row0 < rows; row0 += chunk) out.push({ k, rows, row0, start: k * batch + row0, n: Math.min(chunk, rows - row0) });
  }
  return out;
}

/** Shared float32 views of the weights: SharedArrayBuffer-backed ones as they are, others copied once. */
function sharedViews(weights: Map<string, Tensor>): SampleTask['weights'] {
  return [...weights].map(([name, t]) => {
    let data = t.data;
    if (!(data instanceof Float32Array) || !(data.buffer instanceof SharedArrayBuffer)) {
      const copy = new Float32Array(new SharedBuffer(Math.max(4 * t.size, 8)), 0, t.size);
      copy.set(data);
      data = copy;
    }
    return { name, shape: [...t.shape], data: data as Float32Array };
  });
}

/**
 * drawSamples(model, sampleSpec, {seed, labels, batch}) for the model that `config` and `weights`
 * (and `spec`) describe, drawn on the pool: (N, C, H, W) float32 in [-1, 1], bit-identical.
 */
export async function sampleGrid(pool: SamplePool, o: SampleGridOptions): Promise<Float32Array> {
  const config = parseSiTConfig(o.config);
  const batch = o.batch ?? 100;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`sampleGrid: batch must be a positive integer, got ${batch}`);
  const N = o.labels.length;
  const chunk = o.chunk ?? Math.max(1, Math.ceil(Math.min(N, batch) / (2 * pool.threads)));
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`sampleGrid: chunk must be a positive integer, got ${chunk}`);
  const per = config.inChannels * config.inputSize * config.inputSize;
  const out = new Float32Array(new SharedBuffer(Math.max(4 * N * per, 8)), 0, N * per);
  const plan = planChunks(N, batch, chunk);
  const weights = sharedViews(o.weights);
  const version = o.weightsVersion ?? pool.nextVersion();
  const labels = Array.from(o.labels, (l, i) => {
    if (!Number.isInteger(l) || l < 0 || l >= config.numClasses) throw new Error(`sampleGrid: labels[${i}] = ${l} is not a class in 0..${config.numClasses - 1}`);
    return l;
  });
  // At most `threads` chunks of this call are in flight; on the first failure no further chunk is
  // sent and the call rejects once the running ones have settled, so nothing writes to `out` late.
  // Running tasks are never aborted: piscina's abort kills the worker while its reply may already
  // be in flight, and that reply then surfaces as an uncaught "Unexpected message from Worker".
  let next = 0;
  let done = 0;
  let failure: Error | null = null;
  const runner = async (): Promise<void> => {
    while (!failure && next < plan.length) {
      const i = next++;
      const c = plan[i];
      try {
        await pool.run({
          config, spec: o.spec, version, weights, sample: { ...o.sampleSpec, labelsBefore: labels.slice(0, c.start) }, seed: o.seed,
          batchIndex: c.k, batchRows: c.rows, row0: c.row0,
          labels: labels.slice(c.start, c.start + c.n),
          out: out.subarray(c.start * per, (c.start + c.n) * per),
        });
      } catch (e) {
        failure ??= new Error(`sampleGrid: chunk ${i + 1}/${plan.length} (labels ${c.start}..${c.start + c.n - 1}) failed: ${(e as Error).message}`, { cause: e });
        return;
      }
      o.onProgress?.(++done, plan.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(pool.threads, plan.length) }, runner));
  if (failure) throw failure;
  return out;
}
