// What a study run was made from — its full spec and a hash of every file the spec reads (encoder,
// evaluation classifier and encoder, VAE) — recorded as inputs.json in the run's directory, so
// that `diffactor compare` reuses a finished run only when nothing it depended on has changed
// (a retrained stand-in keeps its file name but not its bytes).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { writeFileAtomic } from '../io/atomic.ts';
import { standinFile } from '../eval/evaluate.ts';
import type { RunSpec } from '../spec/schema.ts';

export interface RunInputs {
  spec: RunSpec;
  /** Dataset override of the study (--data), if any. */
  data: string | null;
  /** sha256 of each file the run reads, by path as the spec names it. */
  files: Record<string, string>;
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The files a run reads: the spec's checkpoints and, when it evaluates, the evaluation stand-ins. */
function filesOf(spec: RunSpec, data: string | null): string[] {
  const out: (string | null | undefined)[] = [spec.encoder?.checkpoint, spec.repa_e?.vae_checkpoint];
  if (spec.train.eval_every > 0) {
    const name = data ?? spec.data.dataset;
    // Unknown datasets without eval files fail when the run starts; here they just add nothing.
    const standin = (kind: 'classifier' | 'encoder') => { try { return standinFile(kind, name); } catch { return null; } };
    out.push(spec.eval.classifier ?? standin('classifier'), spec.eval.encoder ?? spec.encoder?.checkpoint ?? standin('encoder'));
  }
  return [...new Set(out.filter((f): f is string => !!f))].sort();
}

export function runInputs(spec: RunSpec, data?: string): RunInputs {
  const d = data ?? null;
  const files: Record<string, string> = {};
  for (const f of filesOf(spec, d)) files[f] = existsSync(f) ? sha256(f) : 'missing';
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
 * Why a finished run in `dir` cannot stand for a run of `want` (empty: it can). Runs from before
 * inputs.json existed are checked on their spec.yaml alone.
 */
export function staleReasons(dir: string, want: RunInputs): string[] {
  const rec = path.join(dir, 'inputs.json');
  if (existsSync(rec)) {
    const had = JSON.parse(readFileSync(rec, 'utf8')) as RunInputs;
    const reasons = diffPaths(had.spec, want.spec).map((p) => `spec field ${p} differs`);
    if (had.data !== want.data) reasons.push(`--data was ${had.data ?? 'unset'}, now ${want.data ?? 'unset'}`);
    for (const f of new Set([...Object.keys(had.files), ...Object.keys(want.files)])) {
      if (had.files[f] !== want.files[f]) reasons.push(had.files[f] && want.files[f] ? `file ${f} changed since the run` : `file ${f} is ${had.files[f] ? 'no longer' : 'newly'} read`);
    }
    return reasons;
  }
  const specFile = path.join(dir, 'spec.yaml');
  if (!existsSync(specFile)) return ['neither inputs.json nor spec.yaml is there'];
  return diffPaths(JSON.parse(JSON.stringify(parse(readFileSync(specFile, 'utf8')))), want.spec).map((p) => `spec field ${p} differs`);
}
