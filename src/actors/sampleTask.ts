// One task of the sampling pool (src/actors/samplePool.ts): draw rows [row0, row0 + n) of
// drawSamples' model batch `batchIndex` into a shared output view, bit-identical to those rows of
// drawSamples run in-process. The model is built from the config and loaded from shared weight
// views once per worker and weights version, not per task. Not here: splitting the labels,
// the pool itself, and sampling (src/build/draw.ts drawBatch does that).
import { Rng } from '../tensor/rng.ts';
import { fromData, type Tensor } from '../tensor/tensor.ts';
import { fmtShape, sizeOf } from '../tensor/shape.ts';
import { createSiT } from '../models/sit.ts';
import { parseSiTConfig, type SiTConfig } from '../models/config.ts';
import { drawBatch, type SampleSettings } from '../build/draw.ts';
import { backboneForWeights, type Backbone } from '../build/parts.ts';
import type { RunSpec } from '../spec/schema.ts';

/**
 * The rows [row0, row0 + count) of a `rows`-row batch's random streams. Every draw a sampler
 * takes from a batch stream is one (rows, ...) array, so this stream draws exactly the part of it
 * that belongs to its rows. Philox is counter-based: it jumps to the block holding the first
 * element instead of generating the rows before it, and afterwards stands where the whole draw
 * would have left the stream. Children are row views of the parent's children.
 */
export class RowRng extends Rng {
  readonly rows: number;
  readonly row0: number;
  readonly count: number;

  constructor(base: Rng, rows: number, row0: number, count: number) {
    super(base.seed, base.stream, base.counter);
    if (!(Number.isInteger(rows) && Number.isInteger(row0) && Number.isInteger(count) && row0 >= 0 && count >= 1 && row0 + count <= rows)) {
      throw new Error(`RowRng: rows [${row0}, ${row0 + count}) are not inside a batch of ${rows}`);
    }
    this.rows = rows;
    this.row0 = row0;
    this.count = count;
  }

  override child(id: number | string): RowRng {
    return new RowRng(super.child(id), this.rows, this.row0, this.count);
  }

  /** Elements [a, a + n) of the whole-batch draw, and the word count the whole draw consumes. */
  private span(n: number, what: string): { a: number; words: number; per: number } {
    const per = n / this.count;
    if (!Number.isInteger(per)) throw new Error(`RowRng: a draw of ${n} values is not ${this.count} rows (${what})`);
    return { a: this.row0 * per, words: this.rows * per, per };
  }

  override normalArray(n: number, mean = 0, std = 1): Float64Array {
    const { a, words } = this.span(n, 'normalArray');
    // Box–Muller pairs elements (2i, 2i+1); starting at a block boundary (a multiple of 4 words)
    // keeps that pairing, so each element is computed from the same two uniforms as in the full draw.
    const block = Math.floor(a / 4);
    const part = new Rng(this.seed, this.stream, this.counter + block).normalArray(a + n - 4 * block, mean, std);
    this.counter += Math.ceil((words + (words & 1)) / 4);
    return part.slice(a - 4 * block);
  }

  override uniformArray(n: number, lo = 0, hi = 1): Float64Array {
    const { a, words } = this.span(n, 'uniformArray');
    const block = Math.floor(a / 4);
    const part = new Rng(this.seed, this.stream, this.counter + block).uniformArray(a + n - 4 * block, lo, hi);
    this.counter += Math.ceil(words / 4);
    return part.slice(a - 4 * block);
  }

  /** Raw words, integers and permutations are not per-row draws: refuse rather than desynchronise. */
  override uint32(_out: Uint32Array): Uint32Array {
    throw new Error('RowRng: only normal and uniform draws can be taken by rows');
  }
}

/** What a task receives. The views are shared memory (SharedArrayBuffer), never copies. */
export interface SampleTask {
  config: SiTConfig;
  /** The run's spec when its backbone is not the plain SiT/DiT (its methods build it from the weights). */
  spec?: RunSpec;
  /** Equal versions promise equal weights: the worker then reuses its loaded model. */
  version: string;
  weights: { name: string; shape: number[]; data: Float32Array }[];
  sample: SampleSettings;
  seed: number;
  /** drawSamples' batch index k (its streams are Rng(seed).child('sample').child(k)). */
  batchIndex: number;
  /** Labels in that whole batch. */
  batchRows: number;
  /** First row of this task inside the batch. */
  row0: number;
  labels: number[];
  /** (labels.length, C, H, W) view of the shared output, written in place. */
  out: Float32Array;
}

let cached: { arch: string; version: string; model: Backbone } | null = null;

/** The model the weights fit: the spec's methods' backbone, or the plain SiT/DiT. */
function build(config: SiTConfig, spec: RunSpec | undefined, byName: Map<string, Tensor>): { arch: string; make: () => Backbone } {
  const shapes = [...byName].map(([k, t]) => [k, t.shape]);
  if (!spec) return { arch: JSON.stringify(['sit', config, shapes]), make: () => createSiT(config, 0) };
  return { arch: JSON.stringify([spec.methods, config, shapes]), make: () => backboneForWeights(spec, config, byName) };
}

/** What a task did: images drawn, and whether it had to build the model or load weights. */
export interface SampleTaskResult { images: number; built: boolean; loaded: boolean }

/** The worker's model for this task: built once per architecture, loaded once per weights version. */
function modelFor(t: SampleTask): { model: Backbone; built: boolean; loaded: boolean } {
  const byName = new Map<string, Tensor>();
  for (const w of t.weights) {
    if (!(w.data instanceof Float32Array) || w.data.length !== sizeOf(w.shape)) {
      throw new Error(`weight '${w.name}': expected a Float32Array of ${sizeOf(w.shape)} values for shape ${fmtShape(w.shape)}, got ${w.data?.constructor?.name} of ${w.data?.length}`);
    }
    byName.set(w.name, fromData(w.data, w.shape));
  }
  const { arch, make } = build(t.config, t.spec, byName);
  if (cached && cached.arch === arch && cached.version === t.version) return { model: cached.model, built: false, loaded: false };
  const built = !(cached && cached.arch === arch);
  const model = built ? make().eval() : cached!.model;
  cached = null; // a failed load must not leave half-loaded weights under an old version
  model.loadStateDict(byName);
  cached = { arch, version: t.version, model };
  return { model, built, loaded: true };
}

/** The pool's task: fills t.out. */
export default function sampleTask(t: SampleTask): SampleTaskResult {
  const config = parseSiTConfig(t.config);
  const n = t.labels.length;
  const { model, built, loaded } = modelFor({ ...t, config });
  const per = config.inChannels * config.inputSize * config.inputSize;
  if (t.out.length !== n * per) throw new Error(`sample task: output view has ${t.out.length} values, expected ${n} x ${per}`);
  const rng = new RowRng(new Rng(t.seed).child('sample').child(t.batchIndex), t.batchRows, t.row0, n);
  const x = drawBatch(model, t.sample, t.labels, rng);
  t.out.set(x.data);
  return { images: n, built, loaded };
}
