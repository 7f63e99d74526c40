// The Data actor: the training set and the seeded, resumable loader of the reference trainer.
// `next` hands out one batch (images in this step's arena, lent until release), with their latents
// when the spec names a frozen latent space (build/latentSpace.ts): the model's input, encoded once
// per image (build/latentCache.ts) unless the batch is mirrored.
import { Loader, type LoaderState } from '../../data/index.ts';
import { openTrainData } from '../../build/setup.ts';
import { latentSpaceOf } from '../../build/latentSpace.ts';
import { runLatentCache } from '../../build/latentCache.ts';
import type { RunSpec } from '../../spec/schema.ts';

export function dataRole(init: { spec: RunSpec; data?: string }) {
  const { spec } = init;
  const data = openTrainData(spec, init.data);
  const loader = new Loader(data, { batchSize: spec.train.batch_size, seed: spec.seed, hflip: spec.data.hflip });
  const space = latentSpaceOf(spec);
  const cache = space && !spec.data.hflip ? runLatentCache(space, data, spec.train) : null;
  return {
    describe: () => ({ channels: data.channels, height: data.height, numClasses: data.numClasses, count: data.count, name: data.name }),
    next() {
      const { x, y, indices } = loader.next();
      return space ? { x, y, z: cache ? cache.latents(indices) : space.encode(x) } : { x, y };
    },
    state: (): LoaderState => loader.state(),
    restore(b: { state: LoaderState }) {
      loader.restore(b.state);
      return null;
    },
  };
}
