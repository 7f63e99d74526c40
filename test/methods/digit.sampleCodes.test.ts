// DiGIT's autoregressive sampler (src/methods/digit/model.ts sampleCodes): it pads each prefix to a
// bucket length and draws rows in chunks so that memory stays bounded (the pool reuses eight
// shapes instead of 64 new ones per batch). Checked against a plain reference written here — one
// forward of exactly i + 1 tokens per code, every row at once — and for its memory: a second call
// creates no new buffers.
import { describe, expect, it } from 'vitest';
import { noGrad } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { DigitModel, PREFIX_BUCKET, SAMPLE_ROWS, prefixLength } from '../../src/methods/digit/model.ts';
import { drawFrom, filteredProbs, normalCdf } from '../../src/methods/digit/sampling.ts';
import { poolStats } from '../../src/tensor/pool.ts';
import { evalDrawLabel } from '../../src/study/report.ts';
import { tinySpec } from '../actors/specs.ts';

// 8×8 images, patch 2 → 16 codes per image; a GPT of depth 2, width 32.
const config = sitPreset('SiT-T/2', { inputSize: 8, inChannels: 1, numClasses: 3, hiddenSize: 32, depth: 2, numHeads: 2, mlpRatio: 2 });
const model = () => new DigitModel(config, { codes: 12, featureDim: 4, decoderEmbed: 8, decoderWidth: 8, sampling: { temperature: 1, topK: 6, topP: 0.9 } }, new Rng(3));

/** The sampler as the paper states it: code i from the logits of the i + 1 inputs [class, codes < i]. */
function reference(m: DigitModel, noise: Float32Array, y: number[]): Int32Array {
  const n = m.gpt.config.seqLen, k = m.gpt.config.vocab, b = y.length, per = noise.length / b;
  const codes = new Int32Array(b * n);
  noGrad(() => {
    for (let i = 0; i < n; i++) {
      const prefix = new Int32Array(b * i);
      for (let r = 0; r < b; r++) prefix.set(codes.subarray(r * n, r * n + i), r * i);
      const logits = m.gpt.forwardIds(m.gpt.inputIds(prefix, y, i + 1), b, i + 1).data;
      for (let r = 0; r < b; r++) {
        const row = logits.subarray((r * (i + 1) + i) * k, (r * (i + 1) + i + 1) * k);
        codes[r * n + i] = drawFrom(filteredProbs(row, m.sampling), normalCdf(noise[r * per + i]));
      }
    }
  });
  return codes;
}

describe('DiGIT sampler', () => {
  it('prefix lengths: i + 1 rounded up to the bucket, never past the sequence', () => {
    expect(PREFIX_BUCKET).toBe(8);
    expect([0, 6, 7, 8, 15, 16, 60, 63].map((i) => prefixLength(i, 64))).toEqual([8, 8, 8, 16, 16, 24, 64, 64]);
    expect(prefixLength(13, 16)).toBe(16);
    for (let i = 0; i < 64; i++) expect(prefixLength(i, 64)).toBeGreaterThanOrEqual(i + 1);
  });

  it('draws the codes of the plain one-forward-per-code sampler, over more rows than one chunk', () => {
    const m = model();
    const b = SAMPLE_ROWS + 6, n = m.gpt.config.seqLen;
    const noise = new Rng(11).normal([b, n]).data as Float32Array;
    const y = Array.from({ length: b }, (_, r) => r % 3);
    const steps: number[] = [];
    const got = m.sampleCodes(new Tensor(noise, [b, n]), y, (i, total) => steps.push(i / total));
    expect(Array.from(got)).toEqual(Array.from(reference(m, noise, y)));
    expect(steps.at(-1)).toBe(1);
    expect(steps.every((v, j) => j === 0 || v > steps[j - 1])).toBe(true);
  });

  it('a second draw reuses the first one\'s buffers: no new shared buffers', () => {
    const m = model();
    const b = 20, n = m.gpt.config.seqLen;
    const noise = new Tensor(new Float32Array(b * n).fill(0.3), [b, n]);
    const y = Array.from({ length: b }, (_, r) => r % 3);
    m.sampleCodes(noise, y);
    const before = poolStats().created;
    m.sampleCodes(noise, y);
    expect(poolStats().created).toBe(before);
  });
});

describe('how DiGIT draws, as tables and eval print it', () => {
  it('names its own sampling (temperature, top-k, top-p), not the spec\'s unread sampler and steps', () => {
    const spec = tinySpec('digit');
    expect(evalDrawLabel(spec, 40)).toBe('autoregressive, T 1, top-k 4, top-p 0.9 (one GPT call per code)');
    expect(evalDrawLabel(tinySpec('sit-baseline'), 4)).toMatch(/^euler \d+ \(\d+ NFE\)$/);
  });
});
