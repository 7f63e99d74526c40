// tidy(fn): run fn in an allocation scope and return its buffers to the pool when it ends, except
// the tensors reachable from its result (Tensor, arrays, Maps and plain objects of them).
import { beginScope, endScope } from './pool.ts';
import { Tensor } from './tensor.ts';

function collect(v: unknown, out: Set<ArrayBufferLike>, seen: Set<unknown>): void {
  if (v === null || typeof v !== 'object' || seen.has(v)) return;
  seen.add(v);
  if (v instanceof Tensor) {
    out.add(v.buffer);
    if (v.grad) out.add(v.grad.buffer);
    return;
  }
  if (ArrayBuffer.isView(v)) return;
  if (Array.isArray(v)) for (const x of v) collect(x, out, seen);
  else if (v instanceof Map) for (const x of v.values()) collect(x, out, seen);
  else for (const x of Object.values(v)) collect(x, out, seen);
}

export function tidy<T>(fn: () => T): T {
  const scope = beginScope();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    endScope(scope, new Set());
    throw e;
  }
  const keep = new Set<ArrayBufferLike>();
  collect(result, keep, new Set());
  endScope(scope, keep);
  return result;
}
