// Guards docs/tracing.md, "Trace assertions in tests": the page's example runs here, line for line,
// against the trace of a real 2-step REPA-E run on actors (the tiny spec of test/actors/specs.ts),
// and every code line of the page's example must appear verbatim in this file — change both
// together. The assertions are not vacuous: the same filters with the roles swapped fail.
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runActors } from '../src/run/actorRun.ts';
import { readTraceJsonl } from '../src/trace/jsonl.ts';
import type { TraceEvent } from '../src/trace/event.ts';
import { expectMessage, expectNoMessage, messagesOf, normalise } from '../src/trace/assert.ts';
import { tinySpec } from './actors/specs.ts';

const here = fileURLToPath(import.meta.url);
const doc = path.resolve(path.dirname(here), '../docs/tracing.md');
const steps = 2;

/** Step 1 of REPA-E on actors, every request as {from, to, type, step}, in canonical order. */
const golden = [
  ['coordinator', 'data', 'next'], ['coordinator', 'data', 'release'], ['coordinator', 'encoder', 'release'],
  ['coordinator', 'projector', 'release'], ['coordinator', 'projector', 'step'], ['coordinator', 'student', 'release'],
  ['coordinator', 'student', 'step'], ['coordinator', 'teacher', 'release'], ['coordinator', 'vae', 'release'],
  ['data', 'encoder', 'features'], ['data', 'vae', 'encode'], ['projector', 'student', 'alignBackward'],
  ['projector', 'student', 'backward'], ['student', 'projector', 'align'], ['student', 'projector', 'align'],
  ['student', 'teacher', 'ema'], ['student', 'vae', 'update'], ['vae', 'student', 'alignForward'],
  ['vae', 'student', 'forward'],
].map(([from, to, type]) => ({ from, to, type, step: 1 }));

/** The lines of the page's example: its ```ts block under "Trace assertions in tests", without blanks and comments. */
function docExample(): string[] {
  const text = readFileSync(doc, 'utf8');
  const section = text.slice(text.indexOf('## Trace assertions in tests'));
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error(`${doc}: no \`\`\`ts block under "Trace assertions in tests"`);
  return block[1].split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('//'));
}

describe('docs/tracing.md: the trace assertions example', () => {
  let events: TraceEvent[] = [];
  beforeAll(async () => {
    const spec = tinySpec('repa-e', { train: { ...tinySpec('repa-e').train, steps } });
    const out = mkdtempSync(path.join(tmpdir(), 'docs-tracing-'));
    await runActors({ spec, out, quiet: true, samples: false, trace: true });
    events = readTraceJsonl(path.join(out, 'trace.jsonl'));
  }, 120_000);

  it('passes on the trace of a 2-step REPA-E run', () => {
    // The example, as the page shows it:
    expectMessage(events, { kind: 'request', to: 'vae', type: 'update', gradOf: 'vae_align' }, steps);
    expectNoMessage(events, { to: 'vae', gradOf: 'diff' });
    expectNoMessage(events, { to: 'teacher', type: 'backward' });
    expect(normalise(messagesOf(events, { step: 1 }), { order: 'canonical' })).toEqual(golden);
  });

  it('is not vacuous: the filters match real messages, and the old example\'s message does not exist', () => {
    expect(() => expectNoMessage(events, { to: 'vae', gradOf: 'vae_align' })).toThrow(/found 2/);
    expect(() => expectMessage(events, { kind: 'request', to: 'vae', type: 'update', gradOf: 'vae_align' }, steps + 1)).toThrow();
    expectMessage(events, { kind: 'request', to: 'student', type: 'backward', gradOf: 'diff' }, steps);
    // The VAE has no `backward`: a filter for one finds nothing.
    expect(() => expectMessage(events, { to: 'vae', type: 'backward' })).toThrow(/found 0/);
  });

  it('every code line of the page\'s example is in this file', () => {
    const lines = docExample();
    expect(lines.length).toBeGreaterThanOrEqual(5);
    const src = readFileSync(here, 'utf8');
    for (const l of lines) expect(src.includes(l), `docs/tracing.md line not in ${path.basename(here)}: ${l}`).toBe(true);
  });
});
