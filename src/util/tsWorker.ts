// Start a worker_thread whose entry is a TypeScript file (tsx registered inside the worker).
//
// Pre-bundled entries: when DIFFACTOR_WORKER_BUNDLES names a directory with an index.json
// ({ "<entry file URL>": "<bundle file>" }, written by test/setup/workerBundles.ts), an entry listed
// there starts from its one-file ES-module bundle instead: no tsx in the worker, no per-file
// transform and resolve of ~170 modules (a worker is ready in ~0.4 s instead of ~2 s; an actor run
// starts 4–7 of them). The bundle is the same sources compiled by the same esbuild, with each file's
// import.meta.url kept; entries not listed (roles a user registers) start through tsx as before.
// DIFFACTOR_WORKER_BUNDLES=off: every worker through tsx (and the suite's setup builds nothing).
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const bootstrap = new URL('./tsx-bootstrap.mjs', import.meta.url);

/** The environment variable naming a directory of pre-bundled worker entries. */
export const WORKER_BUNDLES_ENV = 'DIFFACTOR_WORKER_BUNDLES';

let index: { dir: string; map: Record<string, string> } | null = null;

/** The bundle of `entry` in the DIFFACTOR_WORKER_BUNDLES directory, or null (no directory, or not listed). */
export function workerBundle(entry: URL): string | null {
  const dir = process.env[WORKER_BUNDLES_ENV];
  if (!dir || dir === 'off') return null;
  if (index?.dir !== dir) {
    const file = path.join(dir, 'index.json');
    if (!existsSync(file)) throw new Error(`${WORKER_BUNDLES_ENV}=${dir}: no index.json there (expected the directory test/setup/workerBundles.ts writes)`);
    index = { dir, map: JSON.parse(readFileSync(file, 'utf8')) as Record<string, string> };
  }
  const bundle = index.map[entry.href];
  return bundle === undefined ? null : path.resolve(dir, bundle);
}

export function tsWorker(entry: URL, options: Omit<WorkerOptions, 'argv'> = {}): Worker {
  const bundle = workerBundle(entry);
  return new Worker(bundle ?? bootstrap, { ...options, argv: [entry.href] });
}
