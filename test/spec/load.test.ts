import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadSpec, parseSpec } from '../../src/spec/load.ts';

describe('run specs', () => {
  it('fills defaults', () => {
    const s = parseSpec({ name: 'x' });
    expect(s.train.grad_clip).toBe(1);
    expect(s.sample.sampler).toBe('euler');
    expect(s.model.class_dropout_prob).toBe(0.1);
  });

  it('names the field, the problem and the allowed values', () => {
    expect(() => parseSpec({ name: 'x', sample: { sampler: 'rk4' } }, 'a.yaml')).toThrow(/a\.yaml: invalid run spec\n {2}- sample\.sampler: must be one of "euler", "heun", "sde", "ddpm", "ddim"/);
    const bad = () => parseSpec({ name: 'x', train: { steps: -3, stepz: 1 } });
    expect(bad).toThrow(/train: unknown field\(s\) stepz/);
    expect(bad).toThrow(/train\.steps: Too small/);
  });

  it('reports unreadable files and broken YAML with the file name', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'spec-'));
    expect(() => loadSpec(path.join(dir, 'missing.yaml'))).toThrow(/missing\.yaml: cannot read spec \(ENOENT\)/);
    const f = path.join(dir, 'bad.yaml');
    writeFileSync(f, 'name: [unclosed');
    expect(() => loadSpec(f)).toThrow(/bad\.yaml: not valid YAML/);
  });
});
