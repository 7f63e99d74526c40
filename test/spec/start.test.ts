// The shipped `npm start` spec (specs/start.yaml): it parses, names its grid classifier, and that
// classifier accepts the images the run draws, so `train` prints the grid's class accuracy at the
// end (run/runDir.ts → eval/gridAccuracy.ts returns null, and nothing is printed, when the
// classifier's input shape or class count does not fit the run). Not a timing or accuracy claim
// about the trained model: real built-in test images stand in for the samples.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadSpec } from '../../src/spec/load.ts';
import { gridAccuracy } from '../../src/eval/gridAccuracy.ts';
import { makeShapes } from '../../src/data/shapes.ts';
import { BUILTIN_TEST_OFFSET } from '../../src/data/builtin.ts';
import { loadFeatureClassifier } from '../../src/standins/features.ts';
import { latentSpaceOf } from '../../src/build/latentSpace.ts';
import { modelConfigFor } from '../../src/build/setup.ts';

const file = path.resolve(import.meta.dirname, '../../specs/start.yaml');

describe('specs/start.yaml (npm start)', () => {
  const spec = loadSpec(file);

  it('names the shipped built-in classifier as its grid classifier, and the file exists', () => {
    expect(spec.data.dataset).toBe('builtin');
    expect(spec.eval.classifier).toBe(path.resolve(path.dirname(file), 'standins/classifier-builtin.safetensors'));
    expect(existsSync(spec.eval.classifier!)).toBe(true);
    const c = loadFeatureClassifier(spec.eval.classifier!);
    expect(c.inputShape).toEqual([3, spec.data.size, spec.data.size]);
    expect(c.numClasses).toBe(10);
  });

  it('end-of-run grid accuracy is measured (not skipped) for its images, and is high on real ones', () => {
    const perClass = 4, n = 10 * perClass;
    // Real test-split images (the classifier never trained on them), in the grid's label order.
    const real = makeShapes(n, 0, BUILTIN_TEST_OFFSET, spec.data.size);
    const labels = Array.from(real.labels);
    const g = gridAccuracy(spec, spec.data.dataset, real.images, labels, 3, spec.data.size);
    expect(g).not.toBeNull();
    expect(g!.n).toBe(n);
    expect(g!.perClass.map(([, drawn]) => drawn)).toEqual(Array(10).fill(perClass));
    expect(g!.accuracy).toBeGreaterThanOrEqual(0.9);
    // Labels shifted by one class: the same images must then score low (the check reads the labels).
    const wrong = labels.map((y) => (y + 1) % 10);
    expect(gridAccuracy(spec, spec.data.dataset, real.images, wrong, 3, spec.data.size)!.accuracy).toBeLessThan(0.2);
  });

  it('trains in the shipped built-in VAE\'s latent space, whose decoded samples are the images the classifier reads', () => {
    expect(spec.latent?.autoencoder).toBe(path.resolve(path.dirname(file), 'standins/vae-builtin.safetensors'));
    const space = latentSpaceOf(spec)!;
    const c = modelConfigFor(spec, { channels: 3, height: spec.data.size, numClasses: 10 });
    expect([c.inChannels, c.inputSize, c.patchSize]).toEqual([4, 8, 1]);
    const classifier = loadFeatureClassifier(spec.eval.classifier!);
    expect([space.imageChannels, c.inputSize * space.factor, c.inputSize * space.factor]).toEqual(classifier.inputShape);
  });
});
