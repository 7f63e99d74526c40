// The layer rule of docs/architecture.md, checked: a file under src/ imports only from its own layer
// or the ones below it, and workers/ entries are thin (they import the actor host and roles, or the
// sampling task, nothing else). Run `npm run check:layers`; test/layers.test.ts runs it in the suite.
// It reads relative `import … from '…'` / `export … from '…'` / `import('…')` specifiers; type-only
// imports count too (a type from above is still a dependency on above).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Bottom to top. Folders on one line share a layer (they may import each other). `progress.ts` and
 * `util/` are beside everything (they import nothing of ours but the kernels' loader, if that).
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['kernels'],
  ['tensor', 'util', 'progress.ts'],
  ['autograd', 'io', 'data'],
  ['nn', 'optim', 'diffusion', 'trace'],
  ['models'],
  ['methods'],
  ['spec'],
  ['build'],
  ['eval', 'standins'],
  ['actors'],
  ['protocols'],
  ['run'],
  ['study', 'bench', 'serve'],
  ['cli'],
];

/** What workers/ entries may import: the actor host and roles, and the sampling task. */
const WORKER_ALLOWED = [/^src\/actors\/host\.ts$/, /^src\/actors\/roles\/[^/]+\.ts$/, /^src\/actors\/sampleTask\.ts$/, /^src\/util\/[^/]+$/];

export interface Violation { file: string; imports: string; why: string }

const rankOf = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));

function layer(rel: string): string {
  const first = rel.split('/')[0];
  return first;
}

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir)) {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (/\.(ts|mjs)$/.test(e)) yield p;
  }
}

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"`;]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)|new URL\(\s*'([^']+)'/g)) {
    const s = m[1] ?? m[2] ?? m[3];
    if (s.startsWith('.')) out.push(s);
  }
  return out;
}

/** Every import that breaks the rule, in a repository rooted at `root`. */
export function checkLayers(root: string): Violation[] {
  const out: Violation[] = [];
  const src = path.join(root, 'src');
  for (const f of files(src)) {
    const rel = path.relative(src, f).split(path.sep).join('/');
    const from = layer(rel), rf = rankOf.get(from);
    if (rf === undefined) {
      out.push({ file: `src/${rel}`, imports: '', why: `'${from}' is in no layer of scripts/check-layers.ts: add it to LAYERS` });
      continue;
    }
    for (const spec of imports(f)) {
      const target = path.relative(src, path.resolve(path.dirname(f), spec)).split(path.sep).join('/');
      if (target.startsWith('..')) {
        // Leaving src/ is allowed only for the worker entry files the roles spawn and the package's
        // own metadata (`--version` reads package.json).
        if (!/^\.\.\/workers\//.test(target) && target !== '../package.json') out.push({ file: `src/${rel}`, imports: spec, why: 'imports from outside src/' });
        continue;
      }
      const to = layer(target), rt = rankOf.get(to);
      if (rt === undefined) continue; // reported for its own files
      if (rt > rf) out.push({ file: `src/${rel}`, imports: spec, why: `${from} (layer ${rf}) imports ${to} (layer ${rt}), which is above it` });
    }
  }
  for (const f of files(path.join(root, 'workers'))) {
    const rel = `workers/${path.basename(f)}`;
    for (const spec of imports(f)) {
      const target = path.relative(root, path.resolve(path.dirname(f), spec)).split(path.sep).join('/');
      if (target.startsWith('workers/')) continue;
      if (!WORKER_ALLOWED.some((r) => r.test(target))) out.push({ file: rel, imports: spec, why: 'a worker entry is a thin shim: it may import the actor host, a role or the sampling task only' });
    }
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const v = checkLayers(root);
  for (const x of v) console.error(`${x.file}: ${x.imports ? `imports '${x.imports}': ` : ''}${x.why}`);
  console.error(v.length ? `check-layers: ${v.length} violation(s)` : `check-layers: ok (${LAYERS.length} layers)`);
  process.exit(v.length ? 1 : 0);
}
