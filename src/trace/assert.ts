// Trace assertions for tests: select messages with a filter, require that none (or some) match, and
// normalise a trace to `{from, to, type, step}` for golden traces. For example, REPA-E's stop-gradient
// is `expectNoMessage(events, { to: 'vae', gradOf: 'diff' })` (REPA-E: only 'vae_align' reaches the VAE).
// Not here: recording (bus.ts and the recorders).
import type { TraceEvent } from './event.ts';
import { byTime } from './exchanges.ts';

export interface MessageFilter {
  from?: string;
  to?: string;
  type?: string;
  kind?: TraceEvent['kind'];
  step?: number | null;
  /** The message's `meta.grad_of` lists this loss term. */
  gradOf?: string;
  /** The message carries a tensor of this name. */
  tensor?: string;
  /** The message carries a tensor with NaN/Inf. */
  nonFinite?: boolean;
}

function gradOf(e: TraceEvent): string[] {
  const g = e.meta?.grad_of;
  return Array.isArray(g) ? g.map(String) : typeof g === 'string' ? [g] : [];
}

export function matches(e: TraceEvent, f: MessageFilter): boolean {
  return (f.from === undefined || e.from === f.from)
    && (f.to === undefined || e.to === f.to)
    && (f.type === undefined || e.type === f.type)
    && (f.kind === undefined || e.kind === f.kind)
    && (f.step === undefined || e.step === f.step)
    && (f.gradOf === undefined || gradOf(e).includes(f.gradOf))
    && (f.tensor === undefined || e.tensors.some((t) => t.name === f.tensor))
    && (f.nonFinite === undefined || e.tensors.some((t) => t.nonFinite > 0) === f.nonFinite);
}

export function messagesOf(events: readonly TraceEvent[], filter: MessageFilter): TraceEvent[] {
  return events.filter((e) => matches(e, filter));
}

const show = (f: MessageFilter) => JSON.stringify(f);
function list(evs: TraceEvent[]): string {
  const lines = evs.slice(0, 5).map((e) => {
    const g = gradOf(e);
    return `  #${e.id} ${e.kind} ${e.from}→${e.to} ${e.type} step ${e.step ?? '-'}${g.length ? ` grad_of=[${g.join(',')}]` : ''}`;
  });
  if (evs.length > 5) lines.push(`  ... and ${evs.length - 5} more`);
  return lines.join('\n');
}

/** Throws, listing the offenders, when any message matches `filter`. */
export function expectNoMessage(events: readonly TraceEvent[], filter: MessageFilter): void {
  const hits = messagesOf(events, filter);
  if (hits.length) throw new Error(`expected no message matching ${show(filter)}, found ${hits.length}:\n${list(hits)}`);
}

/**
 * Throws unless messages match `filter`: at least one, or exactly `count`. Returns them, so a test
 * can go on to check their tensors.
 */
export function expectMessage(events: readonly TraceEvent[], filter: MessageFilter, count?: number): TraceEvent[] {
  const hits = messagesOf(events, filter);
  if (count === undefined ? hits.length === 0 : hits.length !== count) {
    const want = count === undefined ? 'at least one message' : `${count} message(s)`;
    throw new Error(`expected ${want} matching ${show(filter)}, found ${hits.length}${hits.length ? `:\n${list(hits)}` : ''}`);
  }
  return hits;
}

export interface NormalisedMessage {
  from: string;
  to: string;
  type: string;
  step: number | null;
}

export interface NormaliseOptions {
  /** Which kinds to keep; default requests only (replies repeat them and arrive in racing order). */
  kinds?: TraceEvent['kind'][];
  /**
   * 'time' (default): in time order. 'canonical': sorted by step, then from, to, type, so a golden
   * trace does not depend on how parallel states happened to interleave.
   */
  order?: 'time' | 'canonical';
}

/** `{from, to, type, step}` per message for golden traces; internal `xstate.*` events dropped. */
export function normalise(events: readonly TraceEvent[], opts: NormaliseOptions = {}): NormalisedMessage[] {
  const kinds = new Set(opts.kinds ?? ['request']);
  const out = byTime(events)
    .filter((e) => kinds.has(e.kind) && !e.type.startsWith('xstate.'))
    .map(({ from, to, type, step }) => ({ from, to, type, step }));
  if (opts.order === 'canonical') {
    const key = (m: NormalisedMessage) => [m.step ?? -1, m.from, m.to, m.type] as const;
    out.sort((a, b) => {
      const [ka, kb] = [key(a), key(b)];
      for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] < kb[i] ? -1 : 1;
      return 0;
    });
  }
  return out;
}
