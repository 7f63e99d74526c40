// Class accuracy of class-conditional samples: the evaluation classifier's top-1 agreement with the
// class each sample was drawn for, and its confidence — the mean probability it gives that class.
// The standard check that a conditional generator draws what it was asked for (beside FD, which
// does not look at labels); the same numbers on real test images with their true labels are the
// ceiling. Ties in the argmax go to the lowest class index, as numpy's argmax does.
// Not here: the classifier (standins/features.ts), the probabilities (inceptionScore.softmaxRows).
import { checkFeatures, type FeatureMatrix } from './matrix.ts';

export interface ClassAccuracy {
  /** Fraction of rows whose most probable class is their label. */
  accuracy: number;
  /** Mean probability of the label. */
  confidence: number;
}

/** From class probabilities (N × K, rows sum to 1) and the label of each row. */
export function classAccuracy(probs: FeatureMatrix, labels: ArrayLike<number>): ClassAccuracy {
  checkFeatures('probs', probs);
  const { data, n, d: K } = probs;
  if (labels.length !== n) throw new Error(`classAccuracy: ${labels.length} labels for ${n} rows of probabilities`);
  if (n === 0) throw new Error('classAccuracy: no rows');
  let right = 0, conf = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= K) throw new Error(`classAccuracy: label ${y} of row ${i} is not a class in [0, ${K})`);
    let best = 0;
    for (let k = 1; k < K; k++) if (data[i * K + k] > data[i * K + best]) best = k;
    if (best === y) right++;
    conf += data[i * K + y];
  }
  return { accuracy: right / n, confidence: conf / n };
}
