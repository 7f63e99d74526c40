// `diffactor standin <kind>` writes runs/standins/<kind>-<data>.safetensors (under the working
// directory) unless --out is given: retraining no longer replaces the shipped stand-ins in
// specs/standins/ that every spec and test reads. The classifier and encoder train for one step
// here; the VAE (half a minute even for one step: its test pass and latent stats) is stopped where
// it creates the output folder, which happens before training.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { standinClassifier, standinVae } from '../../src/cli/standin.ts';
import { standinEncoder } from '../../src/standins/ssl/cli.ts';

const shipped = path.resolve(import.meta.dirname, '../../specs/standins');
const digest = () => new Map(readdirSync(shipped).map((f) => [f, createHash('sha256').update(readFileSync(path.join(shipped, f))).digest('hex')]));

describe('diffactor standin: default output', () => {
  const cwd = process.cwd(), dir = mkdtempSync(path.join(tmpdir(), 'standin-cli-'));
  const before = digest();
  const err: string[] = [];
  beforeAll(() => {
    process.chdir(dir);
    vi.spyOn(console, 'error').mockImplementation((s: string) => { err.push(String(s)); });
  });
  afterAll(() => {
    vi.restoreAllMocks();
    process.chdir(cwd);
  });

  it('vae aims at runs/standins/ (a file there stops it before training)', () => {
    const other = path.join(dir, 'vae');
    mkdirSync(path.join(other, 'runs'), { recursive: true });
    writeFileSync(path.join(other, 'runs', 'standins'), '');
    process.chdir(other);
    try {
      expect(() => standinVae({ data: 'builtin', steps: 1 })).toThrow(/runs\/standins/);
    } finally {
      process.chdir(dir);
    }
    expect(err.filter((l) => l.startsWith('diffactor standin vae: builtin, 1 steps → runs/standins/vae-builtin.safetensors '))).toHaveLength(1);
    expect(existsSync(path.join(other, 'specs'))).toBe(false);
    expect(digest()).toEqual(before);
  });

  it.each([
    ['classifier', () => standinClassifier({ data: 'builtin', epochs: 1, maxSteps: 1 })],
    ['encoder', () => standinEncoder({ data: 'builtin', steps: 1, probeTrain: 0 })],
  ])('%s goes to runs/standins/ and leaves specs/standins/ alone', (kind, run) => {
    run();
    expect(existsSync(path.join(dir, 'runs', 'standins', `${kind}-builtin.safetensors`))).toBe(true);
    expect(existsSync(path.join(dir, 'specs'))).toBe(false);
    expect(digest()).toEqual(before);
    expect(err).toContain(`the shipped specs/standins/${kind}-builtin.safetensors is unchanged; to replace it, rerun with --out specs/standins/${kind}-builtin.safetensors`);
  }, 120_000);
});
