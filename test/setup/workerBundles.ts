// Vitest global setup: bundle every worker entry (workers/*.ts: the actor roles and the sampling
// pool's task, src/actors/samplePool.ts) into one ES-module file each, once per test run,
// and point DIFFACTOR_WORKER_BUNDLES at them (src/util/tsWorker.ts), so the suite's actor runs
// spend their time training instead of compiling ~170 TypeScript modules in every worker through
// tsx. The bundles are rebuilt from the working tree at every run (never stale) into a fresh
// directory under node_modules/.cache (so bare imports resolve to this checkout's node_modules)
// and removed at the end; DIFFACTOR_WORKER_BUNDLES=off runs the suite on tsx workers.
// test/util/tsWorker.test.ts checks a run on bundled workers equals one on tsx workers bit for bit.
import { build, type Plugin } from 'esbuild';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WORKER_BUNDLES_ENV } from '../../src/util/tsWorker.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Each bundled file keeps its own import.meta.url (the native addon, data and worker paths are relative to it). */
const ownImportMetaUrl: Plugin = {
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8');
      return { contents: src.replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(args.path).href)), loader: 'ts' };
    });
  },
};

export async function buildWorkerBundles(): Promise<string> {
  const cache = path.join(root, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(path.join(cache, 'diffactor-worker-bundles-'));
  const entries = readdirSync(path.join(root, 'workers')).filter((f) => f.endsWith('.ts'));
  await build({
    entryPoints: entries.map((f) => path.join(root, 'workers', f)), outdir: dir, outExtension: { '.js': '.mjs' },
    bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external',
    plugins: [ownImportMetaUrl], logLevel: 'warning',
  });
  const index = Object.fromEntries(entries.map((f) => [pathToFileURL(path.join(root, 'workers', f)).href, f.replace(/\.ts$/, '.mjs')]));
  writeFileSync(path.join(dir, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  return dir;
}

export default async function setup(): Promise<() => void> {
  if (process.env[WORKER_BUNDLES_ENV] === 'off') return () => {}; // `DIFFACTOR_WORKER_BUNDLES=off npm test`: tsx workers
  const dir = await buildWorkerBundles();
  process.env[WORKER_BUNDLES_ENV] = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
