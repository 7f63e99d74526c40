// A protocol composed in code, loaded from a module file so the CLI can train and resume it:
// `diffactor train --spec S --protocol-module my-protocol.ts`. The module's default export (or its
// export named `protocol`) is a ProtocolDefinition (a step machine built from blocks.ts and its
// actors) or a function of the run's spec returning one, e.g.
// `export default (spec) => composeProtocol({ ...spec, ... })`.
// The run directory records which protocol trained it (protocol.json), so `--resume` continues
// with the same one and refuses another. Not here: composing protocols (docs/protocols.md).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../io/atomic.ts';
import type { ProtocolDefinition } from './index.ts';
import type { RunSpec } from '../spec/schema.ts';

export const PROTOCOL_RECORD = 'protocol.json';

/** What protocol.json holds: the protocol's name and, for a composed one, the module it came from. */
export interface ProtocolRecord { name: string; module: string | null }

/** A protocol, or how to make one from the run's spec. */
export type ProtocolSource = ProtocolDefinition | ((spec: RunSpec) => ProtocolDefinition);

/** The protocol a source gives for a spec. */
export function protocolOf(source: ProtocolSource, spec: RunSpec): ProtocolDefinition {
  if (typeof source !== 'function') return source;
  const p = source(spec);
  if (!isProtocol(p)) throw new Error('the protocol module\'s function did not return a ProtocolDefinition ({ name, step, actors })');
  return p;
}

function isProtocol(p: unknown): p is ProtocolDefinition {
  const o = p as ProtocolDefinition | null;
  return !!o && typeof o === 'object' && typeof o.name === 'string' && Array.isArray(o.actors)
    && !!o.step && typeof o.step === 'object' && 'config' in o.step;
}

export async function loadProtocolModule(file: string): Promise<ProtocolSource> {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new Error(`--protocol-module ${file}: no such file`);
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(abs).href) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`--protocol-module ${file}: the module failed to load: ${(e as Error).message}`, { cause: e });
  }
  const p = mod.default ?? mod.protocol;
  if (p === undefined) throw new Error(`--protocol-module ${file}: expected a default export (or an export named 'protocol') holding a ProtocolDefinition, found exports: ${Object.keys(mod).join(', ') || 'none'}`);
  if (typeof p === 'function') return p as (spec: RunSpec) => ProtocolDefinition;
  if (!isProtocol(p)) throw new Error(`--protocol-module ${file}: its export is neither a ProtocolDefinition ({ name: string, step: a stepMachine(...), actors: [...] }) nor a function of the spec returning one, e.g. \`export default (spec) => composeProtocol(spec)\``);
  return p;
}

export function writeProtocolRecord(dir: string, rec: ProtocolRecord): void {
  writeFileAtomic(path.join(dir, PROTOCOL_RECORD), `${JSON.stringify(rec, null, 2)}\n`);
}

/** The record of the run in `dir`, or null for a run from before records were kept. */
export function readProtocolRecord(dir: string): ProtocolRecord | null {
  const f = path.join(dir, PROTOCOL_RECORD);
  if (!existsSync(f)) return null;
  const rec = JSON.parse(readFileSync(f, 'utf8')) as ProtocolRecord;
  if (typeof rec?.name !== 'string') throw new Error(`${f}: expected { name, module }, got ${JSON.stringify(rec)}`);
  return rec;
}

/** Resuming `dir` with `protocol`: an error when the run was trained with another one. */
export function checkResumeProtocol(dir: string, protocol: ProtocolDefinition): void {
  const rec = readProtocolRecord(dir);
  if (!rec || rec.name === protocol.name) return;
  const how = rec.module ? ` (pass --protocol-module ${rec.module}, or the same protocol to runActors)` : '';
  throw new Error(`--resume ${dir}: the run was trained with protocol '${rec.name}'${rec.module ? ` from ${rec.module}` : ''}; resuming it with '${protocol.name}' would drop its other parts${how}`);
}
