// The latents of a training set in a frozen latent space, encoded once and kept: nothing of the
// space trains, so an image's latent never changes, and a run of several epochs pays the
// encoder's forward once per image instead of once per draw (`npm start` draws each image 2–5 times).
// Latents are a pure function of (dataset, autoencoder file): a missing one is encoded with its
// whole canonical chunk (indices ⌊i/CHUNK⌋·CHUNK …, read from the dataset itself), never with
// whatever batch asked first, so a resumed run, the actors and the reference trainer all see the
// same bits. Mirrored batches (data.hflip) are encoded as drawn instead (their pixels are not the
// dataset's), which the caller decides.
import { empty, fromData, type Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/tidy.ts';
import { sampleSize, type ImageDataset } from '../data/index.ts';
import type { LatentSpace } from './latentSpace.ts';

/**
 * The cache a run uses: filled whole by its first step when the run draws at least an epoch (it
 * would encode every image anyway, and steps 2–4, which `train` predicts its duration from, then
 * run at their steady pace); filled on demand otherwise (a short run of a large set, a test).
 * Building it costs nothing: a trainer that is only built (a spec check) encodes no image.
 */
export function runLatentCache(space: LatentSpace, data: ImageDataset, train: { steps: number; batch_size: number }): LatentCache {
  return new LatentCache(space, data, { fillOnFirstUse: train.steps * train.batch_size >= data.count });
}

/** Images per canonical chunk (the encoder's batch). */
const CHUNK = 64;

export class LatentCache {
  private readonly per: number;
  private readonly store: Float32Array;
  private readonly done: Uint8Array;
  private readonly shape: number[];

  private fillOnFirstUse: boolean;

  constructor(readonly space: LatentSpace, readonly data: ImageDataset, o: { fillOnFirstUse?: boolean } = {}) {
    this.fillOnFirstUse = o.fillOnFirstUse ?? false;
    const side = space.side(data.height);
    this.shape = [space.channels, side, side];
    this.per = space.channels * side * side;
    this.store = new Float32Array(data.count * this.per);
    this.done = new Uint8Array(Math.ceil(data.count / CHUNK));
  }

  /** Images encoded so far (tests, progress). */
  get encoded(): number {
    let n = 0;
    for (let k = 0; k < this.done.length; k++) if (this.done[k]) n += Math.min(CHUNK, this.data.count - k * CHUNK);
    return n;
  }

  /**
   * Encode every sample now, chunk by chunk (the same bits as on demand). A run fills its cache
   * before its first step, so step times — and the duration `train` predicts from steps 2–4 — are
   * the steady state's, not the first epoch's, whose random batches touch a new chunk per image.
   */
  fillAll(): this {
    for (let k = 0; k < this.done.length; k++) if (!this.done[k]) this.fill(k);
    return this;
  }

  /** The latents (B, L, h, w) of dataset samples `indices`, in a pooled buffer (call inside the caller's tidy). */
  latents(indices: ArrayLike<number>): Tensor {
    if (this.fillOnFirstUse) {
      this.fillOnFirstUse = false;
      this.fillAll();
    }
    const B = indices.length, z = empty([B, ...this.shape]), out = z.data as Float32Array;
    for (let b = 0; b < B; b++) {
      const i = indices[b];
      if (!Number.isInteger(i) || i < 0 || i >= this.data.count) throw new RangeError(`latent cache: sample index ${i} out of range [0, ${this.data.count})`);
      const k = Math.floor(i / CHUNK);
      if (!this.done[k]) this.fill(k);
      out.set(this.store.subarray(i * this.per, (i + 1) * this.per), b * this.per);
    }
    return z;
  }

  private fill(k: number): void {
    const ds = this.data, start = k * CHUNK, n = Math.min(CHUNK, ds.count - start), sz = sampleSize(ds);
    const x = new Float32Array(n * sz);
    for (let j = 0; j < n; j++) ds.get(start + j, x, j * sz);
    tidy(() => { this.store.set(this.space.encode(fromData(x, [n, ds.channels, ds.height, ds.width])).data, start * this.per); });
    this.done[k] = 1;
  }
}
