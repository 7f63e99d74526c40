// Two identical runs write byte-identical checkpoints: the wall time, which differs from run to
// run, lives in timing.json beside the checkpoint, not in it (it used to sit in the metadata); and
// a resumed run still reads it back.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runTraining } from '../../src/run/run.ts';
import { runActors } from '../../src/run/actorRun.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { tinySpec } from '../actors/specs.ts';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'ckpt-bytes-'));
const bytes = (dir: string) => readFileSync(path.join(dir, 'checkpoint.safetensors'));

describe('checkpoint bytes', () => {
  it('two identical reference runs write identical files; the time is in timing.json', () => {
    const spec = tinySpec('repa', { train: { ...tinySpec('repa').train, steps: 3 } });
    const [a, b] = [tmp(), tmp()];
    runTraining({ spec, out: a, quiet: true, samples: false });
    runTraining({ spec, out: b, quiet: true, samples: false });
    expect(bytes(a).equals(bytes(b))).toBe(true);
    expect(bytes(a).includes(Buffer.from('wallSeconds'))).toBe(false);
    const timing = JSON.parse(readFileSync(path.join(a, 'timing.json'), 'utf8'));
    expect(timing['3']).toBeGreaterThan(0);
    expect(loadCheckpoint(path.join(a, 'checkpoint.safetensors')).state.wallSeconds).toBe(timing['3']);
  }, 60_000);

  it('and so do two identical actor runs', async () => {
    const spec = tinySpec('sra', { train: { ...tinySpec('sra').train, steps: 3 } });
    const [a, b] = [tmp(), tmp()];
    await runActors({ spec, out: a, quiet: true, samples: false, placement: 'local' });
    await runActors({ spec, out: b, quiet: true, samples: false, placement: 'local' });
    expect(bytes(a).equals(bytes(b))).toBe(true);
  }, 60_000);
});
