// Pre-bundled worker entries (src/util/tsWorker.ts, built by test/setup/workerBundles.ts for the
// suite): an actor run on bundled workers is bit-identical to one on tsx-compiled workers, every
// role entry has a bundle, and the bundles keep each file's own import.meta.url (else the native
// addon is looked for beside the bundle, not found, and the workers fall back to the TypeScript
// kernels without a word).
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { runActors } from '../../src/run/actorRun.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { ROLES, roleWorker } from '../../src/actors/roles/index.ts';
import { WORKER_BUNDLES_ENV, workerBundle } from '../../src/util/tsWorker.ts';
import { buildWorkerBundles } from '../setup/workerBundles.ts';
import { tinySpec } from '../actors/specs.ts';

const saved = process.env[WORKER_BUNDLES_ENV];
afterEach(() => {
  if (saved === undefined) delete process.env[WORKER_BUNDLES_ENV];
  else process.env[WORKER_BUNDLES_ENV] = saved;
});

const metrics = (d: string) => readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => { const o = JSON.parse(l); delete o.wall_s; delete o.it_s; return o; });

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
      expect(metrics(a)).toEqual(metrics(b));
      const ca = loadCheckpoint(path.join(a, 'checkpoint.safetensors')), cb = loadCheckpoint(path.join(b, 'checkpoint.safetensors'));
      for (const key of ['model', 'ema', 'proj', 'opt'] as const) {
        expect([...ca[key].keys()].sort()).toEqual([...cb[key].keys()].sort());
        for (const [k, t] of cb[key]) expect(Array.from(ca[key].get(k)!.data), `${key} ${k}`).toEqual(Array.from(t.data));
      }
    } finally {
      if (built) rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
