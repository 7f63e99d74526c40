// What a study run was made from — its full spec and a hash of every file the spec reads (encoder,
// evaluation classifier and encoder, VAE) — recorded as inputs.json in the run's directory, so
// that `diffactor compare` reuses a finished run only when nothing it depended on has changed
// (a retrained stand-in keeps its file name but not its bytes).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { writeFileAtomic } from '../io/atomic.ts';
import { evalFiles } from '../eval/evaluate.ts';
import type { RunSpec } from '../spec/schema.ts';
import { methodsOf } from '../build/parts.ts';
import { parseSpec } from '../spec/load.ts';

export interface RunInputs {
  spec: RunSpec;
  /** Dataset override of the study (--data), if any. */
  data: string | null;
  /**
   * sha256 of each file the run reads, by the role it plays (encoder.checkpoint, eval.classifier,
   * eval.encoder, repa_e.vae_checkpoint): paths differ between clones, roles and bytes do not.
   */
  files: Record<string, string>;
}


const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The files a run reads, by role: the spec's checkpoints and, when it evaluates, the evaluation stand-ins. */
export function filesOf(spec: RunSpec, data: string | null): [role: string, file: string][] {
  const out: [string, string | null | undefined][] = [['encoder.checkpoint', spec.encoder?.checkpoint], ['latent.autoencoder', spec.latent?.autoencoder], ...methodsOf(spec).flatMap((m) => Object.entries(m.def.files?.(m.s) ?? {}))];
  if (spec.train.eval_every > 0) {
    const files = evalFiles(spec, data ?? spec.data.dataset);
    // Unknown datasets without eval files fail when the run starts; here they just add nothing.
    const resolve = (f: () => string) => { try { return f(); } catch { return null; } };
    out.push(['eval.classifier', resolve(files.classifier)], ['eval.encoder', resolve(files.encoder)]);
  }
  return out.filter((e): e is [string, string] => !!e[1]);
}

/** The hash of a file the spec names that is not on this machine. */
export const MISSING = 'missing';

/**
 * Files a run read that are not here to compare (a study restored from its archive on a machine
 * without, say, EPG's stage-1 checkpoint): its records still stand for it, unverified on those.
 * A run to continue needs them anyway, and says so when it loads them.
 */
export function uncheckedFiles(dir: string, want: RunInputs): string[] {
  const rec = path.join(dir, 'inputs.json');
  if (!existsSync(rec)) return [];
  const had = JSON.parse(readFileSync(rec, 'utf8')) as RunInputs;
  return Object.keys(want.files).filter((f) => want.files[f] === MISSING && had.files[f] && had.files[f] !== MISSING && !f.includes('/'));
}

export function runInputs(spec: RunSpec, data?: string): RunInputs {
  const d = data ?? null;
  const files: Record<string, string> = {};
  for (const [role, f] of filesOf(spec, d)) files[role] = existsSync(f) ? sha256(f) : MISSING;
  return { spec: JSON.parse(JSON.stringify(spec)), data: d, files };
}

export function writeRunInputs(dir: string, inputs: RunInputs): void {
  writeFileAtomic(path.join(dir, 'inputs.json'), `${JSON.stringify(inputs, null, 2)}\n`);
}

/** Dotted paths where two JSON values differ (arrays compared whole). */
function diffPaths(a: unknown, b: unknown, at = ''): string[] {
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].sort().flatMap((k) => diffPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], at ? `${at}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [at || '(root)'];
}

/**
 * A stored spec as the current schema reads it: fields added since get their defaults, so a new
 * option whose default keeps the old behaviour does not make old runs stale. A spec the schema no
 * longer accepts is a reason of its own.
 */
function storedSpec(raw: unknown, file: string): { spec: unknown; reasons: string[] } {
  try {
    return { spec: JSON.parse(JSON.stringify(parseSpec(raw, file))), reasons: [] };
  } catch (e) {
    return { spec: raw, reasons: [`its spec is no longer valid: ${(e as Error).message}`] };
  }
}

/**
 * A spec with the fields that name a compared file (by role, e.g. encoder.checkpoint) blanked: the
 * file's bytes are compared instead, so a run made in another clone (other absolute paths) still
 * stands for the same inputs.
 */
function withoutFilePaths(spec: unknown, roles: string[]): unknown {
  const copy = JSON.parse(JSON.stringify(spec)) as Record<string, unknown>;
  for (const role of roles) {
    const keys = role.split('.');
    let at: unknown = copy;
    for (const k of keys.slice(0, -1)) at = at && typeof at === 'object' ? (at as Record<string, unknown>)[k] : undefined;
    const last = keys.at(-1)!;
    if (at && typeof at === 'object' && typeof (at as Record<string, unknown>)[last] === 'string') (at as Record<string, unknown>)[last] = '<file compared by its sha256>';
  }
  return copy;
}

/**
 * Why a finished run in `dir` cannot stand for a run of `want` (empty: it can). Runs from before
 * inputs.json existed are checked on their spec.yaml alone.
 */
export function staleReasons(dir: string, want: RunInputs): string[] {
  const rec = path.join(dir, 'inputs.json');
  const wanted = JSON.parse(JSON.stringify(want.spec));
  if (existsSync(rec)) {
    const had = JSON.parse(readFileSync(rec, 'utf8')) as RunInputs;
    const stored = storedSpec(had.spec, rec);
    // File fields both records hashed are compared by content below, not by path.
    const hashed = Object.keys(had.files).filter((k) => k in want.files);
    const reasons = [...stored.reasons, ...diffPaths(withoutFilePaths(stored.spec, hashed), withoutFilePaths(wanted, hashed)).map((p) => `spec field ${p} differs`)];
    if (had.data !== want.data) reasons.push(`--data was ${had.data ?? 'unset'}, now ${want.data ?? 'unset'}`);
    // Records from before files were keyed by role hold paths: compare their contents as a set.
    if (Object.keys(had.files).some((k) => k.includes('/'))) {
      const a = [...new Set(Object.values(had.files))].sort(), b = [...new Set(Object.values(want.files))].sort();
      if (JSON.stringify(a) !== JSON.stringify(b)) reasons.push('the files it read changed since the run');
      return reasons;
    }
    for (const f of new Set([...Object.keys(had.files), ...Object.keys(want.files)])) {
      if (want.files[f] === MISSING && had.files[f]) continue; // not here to compare: uncheckedFiles
      if (had.files[f] !== want.files[f]) reasons.push(had.files[f] && want.files[f] ? `the ${f} file changed since the run` : `no ${f} file ${had.files[f] ? 'is read any more' : 'was read then'}`);
    }
    return reasons;
  }
  const specFile = path.join(dir, 'spec.yaml');
  if (!existsSync(specFile)) return ['neither inputs.json nor spec.yaml is there'];
  const stored = storedSpec(parse(readFileSync(specFile, 'utf8')), specFile);
  return [...stored.reasons, ...diffPaths(stored.spec, wanted).map((p) => `spec field ${p} differs`)];
}
