// The batch loader: seeded per-epoch shuffling, fixed batch size (drop-last), optional class
// filter and subset, random horizontal flips. Every random choice derives from (seed, epoch):
// epoch e's order is Rng(seed).child('loader').child('order').child(e).permutation(n), its flips
// come from the sibling 'flip' stream, so any epoch can be reproduced on its own and the whole
// position is { seed, epoch, cursor } — a resumed run sees exactly the batches an uninterrupted
// one would. Batch tensors come from the buffer pool (`empty`): call next() inside the caller's
// tidy(). Not a worker: a data actor wraps this.
import { Rng } from '../tensor/rng.ts';
import { empty, type Tensor } from '../tensor/tensor.ts';
import { sampleSize, type ImageDataset } from './dataset.ts';
import { hflipInPlace } from './transforms.ts';

export interface LoaderOptions {
  batchSize: number;
  seed: number;
  /** Keep only samples of these classes (labels stay the dataset's own). */
  classes?: readonly number[];
  /** Keep a seeded random subset of this many samples (after the class filter), fixed for the run. */
  subset?: number;
  /** Mirror each sample left–right with probability 1/2. */
  hflip?: boolean;
}

/** Where the loader is; JSON-serialisable. `size` is checked on restore to catch a changed dataset. */
export interface LoaderState { seed: number; epoch: number; cursor: number; size: number }

export interface Batch {
  x: Tensor;           // (B, C, H, W)
  y: Int32Array;       // (B)
  indices: Int32Array; // (B) dataset indices
  epoch: number;
  /** Position of the batch's first sample in the epoch's order. */
  cursor: number;
}

export class Loader {
  readonly dataset: ImageDataset;
  readonly batchSize: number;
  readonly seed: number;
  readonly hflip: boolean;
  /** Dataset indices the loader draws from, ascending. */
  readonly pool: Int32Array;
  epoch = 0;
  cursor = 0;
  private readonly root: Rng;
  private cached: { epoch: number; order: Int32Array; flips: Uint8Array } | null = null;

  constructor(dataset: ImageDataset, o: LoaderOptions) {
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new Error(`Loader: batchSize must be a positive integer, got ${o.batchSize}`);
    this.dataset = dataset;
    this.batchSize = o.batchSize;
    this.seed = o.seed;
    this.hflip = o.hflip ?? false;
    this.root = new Rng(o.seed).child('loader');
    this.pool = selectPool(dataset, o, this.root);
    if (this.pool.length < this.batchSize) {
      throw new Error(`Loader: ${dataset.name} has ${this.pool.length} samples after filtering, fewer than one batch of ${this.batchSize}`);
    }
  }

  get batchesPerEpoch(): number { return Math.floor(this.pool.length / this.batchSize); }

  state(): LoaderState {
    return { seed: this.seed, epoch: this.epoch, cursor: this.cursor, size: this.pool.length };
  }

  restore(s: LoaderState): this {
    if (s.seed !== this.seed) throw new Error(`Loader.restore: state has seed ${s.seed}, this loader was built with seed ${this.seed}`);
    if (s.size !== this.pool.length) {
      throw new Error(`Loader.restore: state was saved over ${s.size} samples, this loader has ${this.pool.length} (${this.dataset.name}); the dataset or its filter changed`);
    }
    if (!Number.isInteger(s.epoch) || s.epoch < 0 || !Number.isInteger(s.cursor) || s.cursor < 0 || s.cursor % this.batchSize !== 0 || s.cursor + this.batchSize > s.size) {
      throw new Error(`Loader.restore: invalid position epoch ${s.epoch}, cursor ${s.cursor} for batch size ${this.batchSize} over ${s.size} samples`);
    }
    this.epoch = s.epoch;
    this.cursor = s.cursor;
    return this;
  }

  /** Epoch e's order (positions into `pool`) and flip decisions. */
  epochPlan(e: number): { order: Int32Array; flips: Uint8Array } {
    if (this.cached?.epoch !== e) {
      const n = this.pool.length;
      const order = this.root.child('order').child(e).permutation(n);
      const flips = new Uint8Array(n);
      if (this.hflip) {
        const w = this.root.child('flip').child(e).uint32(new Uint32Array(n));
        for (let i = 0; i < n; i++) flips[i] = w[i] >>> 31;
      }
      this.cached = { epoch: e, order, flips };
    }
    return this.cached!;
  }

  /** The next batch; moves to the next epoch when fewer than batchSize samples remain. */
  next(): Batch {
    const { dataset: ds, batchSize: B } = this;
    const { order, flips } = this.epochPlan(this.epoch);
    const x = empty([B, ds.channels, ds.height, ds.width]); // (B, C, H, W)
    const out = x.data as Float32Array;
    const y = new Int32Array(B), indices = new Int32Array(B);
    const sz = sampleSize(ds);
    for (let b = 0; b < B; b++) {
      const pos = this.cursor + b;
      const i = this.pool[order[pos]];
      indices[b] = i;
      y[b] = ds.get(i, out, b * sz);
      if (flips[pos]) hflipInPlace(out, b * sz, ds.channels, ds.height, ds.width);
    }
    const batch: Batch = { x, y, indices, epoch: this.epoch, cursor: this.cursor };
    this.cursor += B;
    if (this.cursor + B > this.pool.length) { this.epoch++; this.cursor = 0; }
    return batch;
  }
}

function selectPool(ds: ImageDataset, o: LoaderOptions, root: Rng): Int32Array {
  let idx: number[] | Int32Array;
  if (o.classes) {
    for (const c of o.classes) {
      if (!Number.isInteger(c) || c < 0 || c >= ds.numClasses) throw new Error(`Loader: class ${c} not in ${ds.name} (0..${ds.numClasses - 1})`);
    }
    const keep = new Set(o.classes);
    idx = [];
    for (let i = 0; i < ds.count; i++) if (keep.has(ds.label(i))) idx.push(i);
  } else {
    idx = new Int32Array(ds.count);
    for (let i = 0; i < ds.count; i++) idx[i] = i;
  }
  if (o.subset !== undefined) {
    if (!Number.isInteger(o.subset) || o.subset < 1) throw new Error(`Loader: subset must be a positive integer, got ${o.subset}`);
    if (o.subset > idx.length) throw new Error(`Loader: subset of ${o.subset} asked, but ${ds.name} has only ${idx.length} samples${o.classes ? ' in the chosen classes' : ''}`);
    const p = root.child('subset').permutation(idx.length).subarray(0, o.subset).sort();
    const all = idx;
    idx = Int32Array.from(p, (k) => all[k]);
  }
  return Int32Array.from(idx);
}
