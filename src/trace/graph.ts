// The actor graph of a recorded trace, what `diffactor serve` draws: one node per actor (the
// summary's row: messages, tensor bytes, busy and idle time) and one edge per message type a sender
// sent a receiver (requests, with their count and bytes, and the bytes of the replies that came
// back). Not here: the per-actor numbers themselves (summary.ts), any drawing (src/serve/page/).
import type { TraceEvent } from './event.ts';
import { summarise, type ActorSummary } from './summary.ts';
import { exchanges } from './exchanges.ts';

export interface MessageEdge {
  from: string;
  to: string;
  /** Message type of the requests (`forward`, `backward`, `ema`, ...). */
  type: string;
  /** Requests of this type from `from` to `to`. */
  count: number;
  /** Bytes of those requests (TraceEvent.bytes: tensor payload plus the JSON rest). */
  bytes: number;
  /** Bytes of their replies (and errors). */
  replyBytes: number;
  /** Of those requests, how many ended in an error. */
  errors: number;
}

export interface ActorGraph {
  /** One per actor that sent or received a message, in the summary's order. */
  nodes: ActorSummary[];
  /** Sorted by sender, receiver, type. */
  edges: MessageEdge[];
}

export function actorGraph(events: readonly TraceEvent[]): ActorGraph {
  const nodes = summarise(events).actors;
  const edges = new Map<string, MessageEdge>();
  for (const ex of exchanges(events)) {
    // A reply without its request (a trace cut at the start) still names the pair and the type.
    const req = ex.request, rep = ex.reply;
    const from = req ? req.from : rep!.to, to = req ? req.to : rep!.from, type = (req ?? rep)!.type;
    const key = `${from}\u0000${to}\u0000${type}`;
    let e = edges.get(key);
    if (!e) edges.set(key, e = { from, to, type, count: 0, bytes: 0, replyBytes: 0, errors: 0 });
    if (req) {
      e.count++;
      e.bytes += req.bytes;
    }
    if (rep) {
      e.replyBytes += rep.bytes;
      if (rep.kind === 'error') e.errors++;
    }
  }
  const order = (a: MessageEdge, b: MessageEdge) => a.from.localeCompare(b.from) || a.to.localeCompare(b.to) || a.type.localeCompare(b.type);
  return { nodes, edges: [...edges.values()].sort(order) };
}
