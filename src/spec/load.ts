// Read and validate a run spec (YAML or JSON). Errors name the file, the field path, what was
// found and what is allowed; nothing is guessed.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { RunSpec } from './schema.ts';

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

export function loadSpec(file: string): RunSpec {
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
  return parseSpec(raw, file);
}
