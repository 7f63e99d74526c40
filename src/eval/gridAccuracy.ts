// How recognisable a run's final sample grid is: the evaluation classifier's (eval.classifier, or
// the shipped stand-in for the run's dataset) top-1 agreement with the class each sample was drawn
// for. It is a quick, coarse check printed at the end of `train` (the classifier's accuracy on real test
// images is the ceiling: 99.5 % on the built-in set); FD and the other metrics are `eval`'s.
// Not here: drawing the samples (build/draw.ts), the full evaluation (evaluate.ts).
import { existsSync } from 'node:fs';
import { fromData } from '../tensor/tensor.ts';
import { loadFeatureClassifier } from '../standins/features.ts';
import type { RunSpec } from '../spec/schema.ts';
import { evalFiles } from './evaluate.ts';

export interface GridAccuracy {
  /** Fraction of samples the classifier assigns to the class they were drawn for. */
  accuracy: number;
  n: number;
  /** Per class: [right, drawn]. */
  perClass: [number, number][];
  classNames: readonly string[];
  classifier: string;
  /** The classifier's accuracy on the real test split (its file's record): the ceiling to compare with. */
  realAccuracy: number;
}

/** Top-1 agreement of `logits` (N, K row-major) with `labels`, overall and per class. */
export function labelAgreement(logits: Float32Array, labels: readonly number[], K: number): { accuracy: number; perClass: [number, number][] } {
  const perClass: [number, number][] = Array.from({ length: K }, () => [0, 0]);
  let right = 0;
  labels.forEach((y, i) => {
    let best = 0;
    for (let k = 1; k < K; k++) if (logits[i * K + k] > logits[i * K + best]) best = k;
    perClass[y][1]++;
    if (best === y) { perClass[y][0]++; right++; }
  });
  return { accuracy: labels.length ? right / labels.length : NaN, perClass };
}

/**
 * The grid's class accuracy, or null when there is no classifier for these images (a dataset
 * without a stand-in and no eval.classifier, a classifier file that is not there, or one trained on
 * another image shape): a missing check is not an error at the end of a finished run, but `onSkip`
 * hears why, so that a named classifier that is absent is never skipped silently.
 */
export function gridAccuracy(spec: RunSpec, dataset: string, images: Float32Array, labels: readonly number[], channels: number, side: number, onSkip?: (why: string) => void): GridAccuracy | null {
  const skip = (why: string) => { onSkip?.(why); return null; };
  let file: string;
  try {
    file = evalFiles(spec, dataset).classifier();
  } catch (e) {
    return skip((e as Error).message);
  }
  if (!existsSync(file)) return skip(`the classifier ${file} is not there (eval.classifier)`);
  const classifier = loadFeatureClassifier(file);
  const [C, H, W] = classifier.inputShape;
  if (C !== channels || H !== side || W !== side) return skip(`the classifier ${file} reads ${C}×${H}×${W} images, these are ${channels}×${side}×${side}`);
  if (classifier.numClasses < Math.max(...labels) + 1) return skip(`the classifier ${file} knows ${classifier.numClasses} classes, the grid draws class ${Math.max(...labels)}`);
  const f = classifier.features(fromData(images.subarray(0, labels.length * C * H * W), [labels.length, C, H, W]));
  const { accuracy, perClass } = labelAgreement(f.logits.data as Float32Array, labels, classifier.numClasses);
  return { accuracy, n: labels.length, perClass, classNames: classifier.classNames, classifier: file, realAccuracy: classifier.testAccuracy };
}

/** The line printed when the grid could not be checked. */
export const gridAccuracySkipped = (why: string): string => `grid class accuracy: not measured (${why})`;

/** One line for the end of a run: overall accuracy and the classes drawn worst. */
export function formatGridAccuracy(g: GridAccuracy): string {
  const worst = g.perClass
    .map(([r, n], k) => ({ k, a: n ? r / n : 1, n }))
    .filter((c) => c.n > 0 && c.a < 1)
    .sort((a, b) => a.a - b.a)
    .slice(0, 3)
    .map((c) => `${g.classNames[c.k] ?? c.k} ${(100 * c.a).toFixed(0)}%`);
  return `grid class accuracy: ${(100 * g.accuracy).toFixed(1)}% of ${g.n} samples (evaluation classifier; ${(100 * g.realAccuracy).toFixed(1)}% on real test images)${worst.length ? `; weakest: ${worst.join(', ')}` : ''}`;
}
