// `diffactor sample --sampler` must fit how the checkpoint's model was trained: its objective's
// family (velocity: euler|heun|sde; ddpm: ddpm|ddim) narrowed by its methods (REG: sde). A wrong
// one is refused by name before any drawing, naming the ones that fit; the same rule refuses it in
// a spec (checkSpecConsistency), from one function.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sample } from '../../src/cli/sample.ts';
import { checkSampler, checkSpecConsistency, samplersFor } from '../../src/build/setup.ts';
import { tinySpec } from '../actors/specs.ts';
import { untrainedCheckpoint } from './checkpoints.ts';

describe('diffactor sample --sampler', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sample-cli-'));
  const out = (n: string) => path.join(dir, `${n}.png`);

  it('refuses DDPM on a velocity SiT (it used to write blobs) and names euler, heun, sde', () => {
    const { file } = untrainedCheckpoint(dir, 'sit-baseline');
    expect(() => sample({ checkpoint: file, out: out('sit-ddpm'), sampler: 'ddpm' }))
      .toThrow(/^spec 'tiny-sit-baseline': --sampler ddpm does not fit objective velocity .*: use euler or heun or sde$/);
    expect(existsSync(out('sit-ddpm'))).toBe(false);
    sample({ checkpoint: file, out: out('sit-heun'), sampler: 'heun', steps: 1, perClass: 1 });
    expect(existsSync(out('sit-heun'))).toBe(true);
  });

  it('refuses an ODE on a DDPM DiT (it used to die on the channel count) and names ddpm, ddim', () => {
    const { file } = untrainedCheckpoint(dir, 'dit-baseline');
    expect(() => sample({ checkpoint: file, out: out('dit-heun'), sampler: 'heun' }))
      .toThrow(/--sampler heun does not fit objective ddpm .*: use ddpm or ddim$/);
  });

  it('refuses REG\'s non-SDE samplers with its own restriction', () => {
    const { file } = untrainedCheckpoint(dir, 'reg');
    expect(() => sample({ checkpoint: file, out: out('reg-euler'), sampler: 'euler' }))
      .toThrow(/REG samples with sde only \(--sampler: sde, got euler\)/);
  });

  it('is one rule for specs and the command line', () => {
    expect(samplersFor(tinySpec('sit-baseline'))).toEqual(['euler', 'heun', 'sde']);
    expect(samplersFor(tinySpec('dit-baseline'))).toEqual(['ddpm', 'ddim']);
    expect(samplersFor(tinySpec('reg'))).toEqual(['sde']);
    const spec = tinySpec('dit-baseline');
    const bad = { ...spec, sample: { ...spec.sample, sampler: 'euler' as const } };
    expect(() => checkSpecConsistency(bad)).toThrow(/sample\.sampler euler does not fit objective ddpm .*: use ddpm or ddim/);
    expect(() => checkSampler(spec, 'ddim', '--sampler')).not.toThrow();
  });
});
