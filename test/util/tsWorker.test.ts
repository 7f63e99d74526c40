// Pre-bundled worker entries (src/util/tsWorker.ts, built by test/setup/workerBundles.ts for the
// suite): an actor run on bundled workers is bit-identical to one on tsx-compiled workers, every
// role entry and the sampling task have a bundle, and the bundles keep each file's own
// import.meta.url (else the native addon is looked for beside the bundle, not found, and the
// workers fall back to the TypeScript kernels without a word).
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { runActors } from '../../src/run/actorRun.ts';
import { ROLES, roleWorker } from '../../src/actors/roles/index.ts';
import { WORKER_BUNDLES_ENV, workerBundle } from '../../src/util/tsWorker.ts';
import { buildWorkerBundles } from '../setup/workerBundles.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectSameTensors, readCheckpoint, readMetrics } from '../run/methodRun.ts';

const saved = process.env[WORKER_BUNDLES_ENV];
afterEach(() => {
  if (saved === undefined) delete process.env[WORKER_BUNDLES_ENV];
  else process.env[WORKER_BUNDLES_ENV] = saved;
});

describe('pre-bundled worker entries', () => {
  it('every role has a bundle that keeps its files\' import.meta.url; unlisted entries and no directory start through tsx', async () => {
    const dir = await buildWorkerBundles();
    try {
      process.env[WORKER_BUNDLES_ENV] = dir;
      for (const role of Object.keys(ROLES)) {
        const b = workerBundle(roleWorker(role));
        expect(b, role).toBe(path.join(dir, `${role}.mjs`));
        const text = readFileSync(b!, 'utf8');
        expect(text, role).not.toMatch(/import\.meta\.url/);
        expect(text, role).toContain(JSON.stringify(pathToFileURL(path.resolve('src/kernels/native.ts')).href));
      }
      // The sampling pool's task too (src/actors/samplePool.ts; test/actors/samplePool.test.ts checks its grids).
      expect(workerBundle(new URL('../../workers/sampleTask.ts', import.meta.url))).toBe(path.join(dir, 'sampleTask.mjs'));
      expect(workerBundle(new URL('file:///elsewhere/my-role.ts'))).toBeNull();
      delete process.env[WORKER_BUNDLES_ENV];
      expect(workerBundle(roleWorker('student'))).toBeNull();
      process.env[WORKER_BUNDLES_ENV] = 'off';
      expect(workerBundle(roleWorker('student'))).toBeNull();
      const empty = mkdtempSync(path.join(tmpdir(), 'no-bundles-'));
      process.env[WORKER_BUNDLES_ENV] = empty;
      expect(() => workerBundle(roleWorker('student'))).toThrow(new RegExp(`${WORKER_BUNDLES_ENV}=.*no index\\.json`));
      writeFileSync(path.join(empty, 'index.json'), '{}');
      expect(workerBundle(roleWorker('student'))).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a REPA run on bundled workers equals the run on tsx workers bit for bit', async () => {
    const built = saved === undefined || saved === 'off';
    const dir = built ? await buildWorkerBundles() : saved;
    try {
      expect(readdirSync(dir)).toContain('index.json');
      const spec = tinySpec('repa', { train: { ...tinySpec('repa').train, steps: 4, checkpoint_every: 2 } });
      const a = mkdtempSync(path.join(tmpdir(), 'bundled-')), b = mkdtempSync(path.join(tmpdir(), 'tsx-'));
      process.env[WORKER_BUNDLES_ENV] = dir;
      await runActors({ spec, out: a, quiet: true, samples: false });
      delete process.env[WORKER_BUNDLES_ENV];
      await runActors({ spec, out: b, quiet: true, samples: false });
      expect(readMetrics(a)).toEqual(readMetrics(b));
      const ca = readCheckpoint(a), cb = readCheckpoint(b);
      for (const key of ['model', 'ema', 'proj', 'opt'] as const) expectSameTensors(cb[key], ca[key], key);
    } finally {
      if (built) rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
