// `diffactor eval` says what the user got wrong, before any sampling: --samples not above eval.k
// (precision/recall's k-NN; the smallest valid count is named), data of another image shape than
// the model draws (pixel models; REPA-E's VAE decides its shape) or the classifier reads. A run
// that goes ahead with fewer than ~1,000 samples warns on stderr, in one line, that FD is biased.
import { describe, expect, it, vi } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { evaluateCheckpoint } from '../../src/cli/eval.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { writePng } from '../data/files.ts';
import { untrainedCheckpoint } from './checkpoints.ts';

/** A grey 16 px PNG folder with train/ and test/ splits of 10 classes × 3 images. */
function greyFolder(dir: string): string {
  const root = path.join(dir, 'grey');
  for (const split of ['train', 'test']) for (let c = 0; c < 10; c++) for (let i = 0; i < 3; i++) {
    writePng(path.join(root, split, `c${c}`, `${i}.png`), 16, 16, new Uint8Array(16 * 16 * 4).fill(40 + 20 * c), 0);
  }
  return root;
}

/** Seed-weight stand-ins for 1×16×16 images. */
const greyStandins = (dir: string) => writeTestStandins(dir, { channels: 1, dataset: 'grey' });

describe('diffactor eval: wrong inputs', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'eval-inputs-'));
  const small = { samples: 12, steps: 1, reference: 30, probe_train: 30, probe_test: 20, sfid_channels: 2 };

  it('--samples must exceed eval.k, and says the smallest valid value', () => {
    const { file } = untrainedCheckpoint(dir, 'sit-baseline', { eval: { ...small, ...writeTestStandins(dir) } });
    expect(() => evaluateCheckpoint({ checkpoint: file, samples: 2, json: true }))
      .toThrow(/^eval: --samples 2 must exceed eval\.k = 3 \(precision\/recall's k nearest neighbours\): use at least 4$/);
  });

  it('refuses data of another channel count than the model draws, naming --data and the training data', () => {
    const { file } = untrainedCheckpoint(dir, 'sit-baseline', { eval: { ...small, ...writeTestStandins(dir) } });
    const grey = greyFolder(dir);
    expect(() => evaluateCheckpoint({ checkpoint: file, data: grey, json: true }))
      .toThrow(`eval: the model draws 3×16×16 images but --data ${grey} gives 1×16×16: evaluate on the data it was trained on (builtin, data.size 16)`);
  });

  it('refuses a classifier of another image shape than the data', () => {
    const { file } = untrainedCheckpoint(dir, 'sit-baseline', { eval: { ...small, ...greyStandins(dir) } });
    expect(() => evaluateCheckpoint({ checkpoint: file, json: true })).toThrow(/evaluation classifier \S+ reads 1×16×16 images but data\.dataset builtin gives 3×16×16: set eval\.classifier/);
  });

  it('refuses data of another shape than a REPA-E model\'s VAE draws', () => {
    const { file } = untrainedCheckpoint(dir, 'repa-e', { eval: { ...small, ...greyStandins(dir) } });
    expect(() => evaluateCheckpoint({ checkpoint: file, data: greyFolder(dir), json: true }))
      .toThrow('eval: the model\'s VAE draws 3×16×16 images but the evaluation data gives 1×16×16: evaluate on the data it was trained on (builtin, data.size 16)');
  });

  it('warns in one stderr line that FD from fewer than ~1,000 samples is biased', () => {
    const { file } = untrainedCheckpoint(dir, 'sit-baseline', { eval: { ...small, ...writeTestStandins(dir) } });
    const err: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((s: string) => { err.push(s); });
    vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      evaluateCheckpoint({ checkpoint: file, samples: 4, json: true });
    } finally {
      vi.restoreAllMocks();
    }
    const w = err.filter((s) => /FD/.test(s));
    expect(w).toEqual(['eval: warning: FD from 4 samples (< ~1000) is biased upwards; compare it only with FDs from as many samples']);
  }, 60_000);
});
