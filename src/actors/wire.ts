// How tensors cross actors: a Tensor in a message body becomes `{ __tensor, data, shape }` whose
// `data` is a typed-array view of the same SharedArrayBuffer (structured clone shares it, no copy),
// and the receiver rebuilds a frozen Tensor over that view. The sender freezes its tensor too, so
// neither side can write it while the message's lease lasts (see core.ts). Bodies are plain
// objects, arrays and Maps; other values pass through structured clone unchanged.
// In the ArrayBuffer fallback (src/tensor/sab.ts: no SharedArrayBuffer, or DIFFACTOR_NO_SAB=1)
// `data` is a view of an ArrayBuffer, which structured clone copies: the receiver gets its own
// storage. A view over only part of its buffer, or over shared memory, is first cut to a compact
// ArrayBuffer copy (so the clone copies the tensor, not a whole arena buffer, and never shares).
// Freezing and leases are kept as they are with shared memory, so code behaves the same in both.
// Not here: message envelopes (messages.ts), statistics for tracing (src/trace/stats.ts).
import { Tensor, fromData } from '../tensor/tensor.ts';
import { isSharedBuffer, sharedMemoryInfo } from '../tensor/sab.ts';
import type { FArray } from '../kernels/types.ts';

export interface WireTensor { __tensor: 1; data: FArray; shape: number[] }

function isWire(v: unknown): v is WireTensor {
  return typeof v === 'object' && v !== null && (v as WireTensor).__tensor === 1;
}

function plain(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** Visit every tensor of a body with its path (`hidden.2`, `grads.hidden.2`). */
export function forEachTensor(body: unknown, fn: (path: string, t: Tensor) => void, path = ''): void {
  const at = (k: string) => (path ? `${path}.${k}` : k);
  if (body instanceof Tensor) fn(path || 'value', body);
  else if (Array.isArray(body)) body.forEach((v, i) => forEachTensor(v, fn, at(String(i))));
  else if (body instanceof Map) for (const [k, v] of body) forEachTensor(v, fn, at(String(k)));
  else if (plain(body)) for (const [k, v] of Object.entries(body)) forEachTensor(v, fn, at(k));
}

/**
 * Replace tensors by wire records; every tensor sent is frozen and passed to `sent`. With shared
 * memory, a tensor whose storage is not a SharedArrayBuffer cannot travel without a copy: that is
 * a bug in the sender, so it throws. In the ArrayBuffer fallback every tensor travels as a copy.
 */
export function toWire(body: unknown, sent?: (t: Tensor) => void, path = ''): unknown {
  if (body instanceof Tensor) {
    if (body.disposed) throw new Error(`message field '${path || 'value'}': tensor was released before sending`);
    const data = wireData(body, path);
    sent?.(body);
    body.freeze();
    return { __tensor: 1, data, shape: [...body.shape] } satisfies WireTensor;
  }
  const at = (k: string) => (path ? `${path}.${k}` : k);
  if (Array.isArray(body)) return body.map((v, i) => toWire(v, sent, at(String(i))));
  if (body instanceof Map) return new Map([...body].map(([k, v]) => [k, toWire(v, sent, at(String(k)))]));
  if (plain(body)) return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, toWire(v, sent, at(k))]));
  return body;
}

/** What a wire record carries: the view itself, or in the fallback a view structured clone may copy. */
function wireData(t: Tensor, path: string): FArray {
  const d = t.data;
  if (sharedMemoryInfo.transfer === 'shared') {
    if (!isSharedBuffer(d.buffer)) {
      throw new Error(`message field '${path || 'value'}': tensor ${JSON.stringify(t.shape)} is not in a SharedArrayBuffer and would be copied`);
    }
    return d;
  }
  // Fallback: the clone copies the view's whole buffer, and would share a SharedArrayBuffer.
  const whole = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength;
  return whole && !isSharedBuffer(d.buffer) ? d : d.slice();
}

/** Rebuild frozen tensors over the received storage (shared, or the receiver's own copy). */
export function fromWire<T = unknown>(body: unknown): T {
  if (isWire(body)) return fromData(body.data, body.shape).freeze() as T;
  if (Array.isArray(body)) return body.map((v) => fromWire(v)) as T;
  if (body instanceof Map) return new Map([...body].map(([k, v]) => [k, fromWire(v)])) as T;
  if (plain(body)) return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, fromWire(v)])) as T;
  return body as T;
}
