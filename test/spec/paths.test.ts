// A spec's relative paths are relative to the spec file (they resolved against the working
// directory before, so a spec failed with ENOENT when run from elsewhere): the encoder's and the
// evaluation's files, a method's files (REPA-E's VAE), a dataset folder; named datasets and
// absolute paths stay as they are.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadSpec } from '../../src/spec/load.ts';

const specs = path.resolve(import.meta.dirname, '../../specs');

describe('paths in a spec file', () => {
  it('resolve against the spec\'s folder', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'spec-paths-'));
    mkdirSync(path.join(dir, 'models'));
    const file = path.join(dir, 'run.yaml');
    writeFileSync(file, stringify({
      name: 'p', methods: ['repa-e'], data: { dataset: 'my-pngs' },
      encoder: { checkpoint: 'models/enc.safetensors' },
      repa_e: { vae_checkpoint: '../shared/vae.safetensors' },
      eval: { classifier: '/abs/classifier.safetensors', encoder: 'models/eval-enc.safetensors' },
    }));
    const s = loadSpec(file);
    expect(s.encoder!.checkpoint).toBe(path.join(dir, 'models/enc.safetensors'));
    expect((s.repa_e as { vae_checkpoint: string }).vae_checkpoint).toBe(path.resolve(dir, '../shared/vae.safetensors'));
    expect(s.eval.classifier).toBe('/abs/classifier.safetensors');
    expect(s.eval.encoder).toBe(path.join(dir, 'models/eval-enc.safetensors'));
    expect(s.data.dataset).toBe(path.join(dir, 'my-pngs'));
  });

  it('leave named datasets alone', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'spec-paths-'));
    const file = path.join(dir, 'run.yaml');
    writeFileSync(file, stringify({ name: 'n', data: { dataset: 'fashion-mnist' } }));
    expect(loadSpec(file).data.dataset).toBe('fashion-mnist');
  });

  it('every shipped spec names files that exist, whatever the working directory', () => {
    for (const f of readdirSync(specs).filter((x) => x.endsWith('.yaml'))) {
      const s = loadSpec(path.join(specs, f)) as Record<string, any>;
      for (const p of [s.encoder?.checkpoint, s.repa_e?.vae_checkpoint]) {
        if (!p) continue;
        expect(path.isAbsolute(p), `${f}: ${p}`).toBe(true);
        expect(existsSync(p), `${f}: ${p}`).toBe(true);
      }
    }
  });
});

describe('--seed and --set', () => {
  it('override fields before validation and are refused like the file\'s own mistakes', () => {
    const file = path.join(specs, 'start.yaml');
    const s = loadSpec(file, ['seed=7', 'train.lr=1e-4', 'sample.per_class=2']);
    expect([s.seed, s.train.lr, s.sample.per_class]).toEqual([7, 1e-4, 2]);
    expect(() => loadSpec(file, ['train.lrr=1'])).toThrow(/with --set train\.lrr=1: invalid run spec[\s\S]*train: unknown field\(s\) lrr/);
    expect(() => loadSpec(file, ['train.lr=abc'])).toThrow(/train\.lr: .*expected number/);
    expect(() => loadSpec(file, ['lr'])).toThrow(/--set lr: expected path=value/);
    expect(() => loadSpec(file, ['seed.x=1'])).toThrow(/'seed' is a value, not a section/);
  });
});
