// Read and validate a run spec (YAML or JSON). Errors name the file, the field path, what was
// found and what is allowed; nothing is guessed.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import path from 'node:path';
import { RunSpec } from './schema.ts';
import { activeMethods } from '../methods/registry.ts';

export class SpecError extends Error {}

function describe(issue: z.core.$ZodIssue): string {
  const at = issue.path.length ? issue.path.join('.') : '(top level)';
  const i = issue as z.core.$ZodIssue & { values?: unknown[]; keys?: string[]; expected?: string; input?: unknown };
  if (issue.code === 'invalid_value' && i.values) return `${at}: must be one of ${i.values.map((v) => JSON.stringify(v)).join(', ')}`;
  if (issue.code === 'unrecognized_keys' && i.keys) return `${at}: unknown field(s) ${i.keys.join(', ')}`;
  return `${at}: ${issue.message}`;
}

/** Validate an already-parsed object; `source` names it in errors. */
export function parseSpec(raw: unknown, source = 'spec'): RunSpec {
  const r = RunSpec.safeParse(raw);
  if (!r.success) {
    throw new SpecError(`${source}: invalid run spec\n${r.error.issues.map((i) => `  - ${describe(i)}`).join('\n')}`);
  }
  return r.data;
}

/**
 * `--set train.lr=1e-4 --set seed=3`: each `a.b.c=value` (value read as YAML: numbers, booleans,
 * null, lists) replaces that field of the raw spec before validation, so a wrong path or value is
 * refused like one written in the file, and the run's spec.yaml records the result.
 */
export function applyOverrides(raw: unknown, sets: readonly string[], source: string): unknown {
  const out = structuredClone(raw ?? {}) as Record<string, unknown>;
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new SpecError(`${source}: --set ${s}: expected path=value, e.g. --set train.lr=1e-4`);
    const keys = s.slice(0, eq).split('.');
    if (keys.some((k) => !k)) throw new SpecError(`${source}: --set ${s}: empty field name in '${s.slice(0, eq)}'`);
    let obj = out;
    for (const k of keys.slice(0, -1)) {
      const next = obj[k];
      if (next === undefined || next === null) obj[k] = {};
      else if (typeof next !== 'object' || Array.isArray(next)) throw new SpecError(`${source}: --set ${s}: '${k}' is a value, not a section`);
      obj = obj[k] as Record<string, unknown>;
    }
    obj[keys[keys.length - 1]] = parseYaml(s.slice(eq + 1));
  }
  return out;
}

export function loadSpec(file: string, sets: readonly string[] = []): RunSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SpecError(`${file}: cannot read spec (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new SpecError(`${file}: not valid YAML: ${(e as Error).message}`);
  }
  const source = sets.length ? `${file} with --set ${sets.join(' ')}` : file;
  return resolvePaths(parseSpec(applyOverrides(raw, sets, source), source), path.dirname(path.resolve(file)));
}

/** Dataset names that are not paths (src/data/open.ts). */
const NAMED_DATASETS = new Set(['builtin', 'fashion-mnist', 'cifar10']);

/**
 * A spec file's relative paths are relative to the file, not to the working directory: a spec
 * runs the same from anywhere. The fields: the encoder's, the latent space's and the evaluation's files, each method's
 * files (MethodDefinition.files), and a dataset given as a folder. They come back absolute.
 */
export function resolvePaths(spec: RunSpec, dir: string): RunSpec {
  const out = structuredClone(spec) as RunSpec & Record<string, Record<string, unknown> | undefined>;
  const fix = (section: string, field: string) => {
    const obj = out[section];
    const v = obj?.[field];
    if (typeof v === 'string' && v && !path.isAbsolute(v)) obj![field] = path.resolve(dir, v);
  };
  fix('encoder', 'checkpoint');
  fix('eval', 'classifier');
  fix('eval', 'encoder');
  fix('latent', 'autoencoder');
  for (const m of activeMethods(out)) {
    for (const key of Object.keys(m.def.files?.(m.s) ?? {})) {
      const [section, field] = key.split('.');
      fix(section, field);
    }
  }
  if (!NAMED_DATASETS.has(out.data.dataset)) fix('data', 'dataset');
  return out;
}
