// The end-of-run grid check: top-1 agreement counted right (closed cases), and the shipped built-in
// classifier reading real built-in images as their classes and shuffled labels as mostly wrong.
import { describe, expect, it } from 'vitest';
import { formatGridAccuracy, gridAccuracy, gridAccuracySkipped, labelAgreement } from '../../src/eval/gridAccuracy.ts';
import { makeShapes } from '../../src/data/shapes.ts';
import { parseSpec } from '../../src/spec/load.ts';

describe('labelAgreement', () => {
  it('counts argmax hits per class', () => {
    // 3 classes; rows: argmax 0, 2, 1, 1
    const logits = new Float32Array([5, 1, 0, 0, 1, 3, -1, 2, 0, 0, 9, 8]);
    const r = labelAgreement(logits, [0, 2, 2, 1], 3);
    expect(r.accuracy).toBe(0.75);
    expect(r.perClass).toEqual([[1, 1], [1, 1], [1, 2]]);
  });
});

describe('gridAccuracy', () => {
  const spec = parseSpec({ name: 'g', data: { dataset: 'builtin', size: 32 } });
  const n = 60;
  const real = makeShapes(n, 123, 0); // another seed than the classifier's training set (seed 0)
  const labels = Array.from(real.labels);

  it('reads real built-in images as their classes', () => {
    const g = gridAccuracy(spec, 'builtin', real.images, labels, 3, 32)!;
    expect(g).not.toBeNull();
    expect(g.n).toBe(n);
    expect(g.accuracy).toBeGreaterThan(0.95);
    expect(formatGridAccuracy(g)).toMatch(/^grid class accuracy: \d+\.\d% of 60 samples/);
  });

  it('finds wrong labels wrong', () => {
    const shifted = labels.map((y) => (y + 1) % 10);
    expect(gridAccuracy(spec, 'builtin', real.images, shifted, 3, 32)!.accuracy).toBeLessThan(0.1);
  });

  it('is null when no classifier fits the images (other shape, unknown dataset)', () => {
    expect(gridAccuracy(spec, 'builtin', real.images.subarray(0, n * 16 * 16), labels, 1, 16)).toBeNull();
    expect(gridAccuracy(spec, 'my-folder', real.images, labels, 3, 32)).toBeNull();
  });

  it('says why it did not measure: a named classifier that is not there is never skipped silently', () => {
    const why: string[] = [];
    const named = parseSpec({ name: 'g', data: { dataset: 'builtin', size: 32 }, eval: { classifier: '/nowhere/classifier.safetensors' } });
    expect(gridAccuracy(named, 'builtin', real.images, labels, 3, 32, (w) => why.push(w))).toBeNull();
    expect(why).toEqual(['the classifier /nowhere/classifier.safetensors is not there (eval.classifier)']);
    expect(gridAccuracy(spec, 'builtin', real.images.subarray(0, n * 16 * 16), labels, 1, 16, (w) => why.push(w))).toBeNull();
    expect(why[1]).toMatch(/reads 3×32×32 images, these are 1×16×16$/);
    expect(gridAccuracySkipped(why[0])).toBe('grid class accuracy: not measured (the classifier /nowhere/classifier.safetensors is not there (eval.classifier))');
  });
});
