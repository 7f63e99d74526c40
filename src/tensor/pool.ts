// Buffer pool and allocation scopes. Shared buffers are costly to create (zero-filled mmap), so a
// training step reuses the buffers of the previous one: `tidy(fn)` returns every buffer allocated
// inside fn to the pool when fn ends, except those reachable from fn's result or marked `keep`.
// Buffers allocated outside any scope (parameters, optimiser state) are never recycled.
// Frozen buffers (handed to another actor) are never recycled either: a receiver may still read them.
import { totalmem } from 'node:os';
import { SharedBuffer } from './sab.ts';

/** A scope entry: an owner allocated the buffer; a view only shares it (and is disposed with it). */
interface Owned { buffer: ArrayBufferLike; owner: boolean; released(): void; readonly kept: boolean; readonly frozen: boolean }

const free = new Map<number, ArrayBufferLike[]>();
const stats = { created: 0, reused: 0, released: 0, evicted: 0 };
const scopes: Owned[][] = [];

/**
 * The free buffers in the order they were released (oldest first) and the bytes they hold. A step
 * of fixed shapes reuses last step's buffers, so the pool stays at one step's working set; work
 * whose shapes change every call never reuses a size — autoregressive sampling, whose prefix grows
 * by a token per call, released a new set of sizes 64 times per image batch and held 18 GB by the
 * 56th token (DiGIT, 80 images) — so the pool is bounded and drops its longest-unused buffers
 * (left to the garbage collector) past the bound.
 */
const freeOrder = new Map<ArrayBufferLike, number>();
let freeBytes = 0;

/** The default bound of one thread's pool: a quarter of the machine's memory, at most 4 GiB. */
function defaultLimit(): number {
  const mb = Number(process.env.DIFFACTOR_POOL_MB);
  if (process.env.DIFFACTOR_POOL_MB !== undefined) {
    if (!(Number.isFinite(mb) && mb >= 0)) throw new Error(`DIFFACTOR_POOL_MB=${process.env.DIFFACTOR_POOL_MB}: expected a size in MB (≥ 0) for each thread's buffer pool`);
    return mb * 2 ** 20;
  }
  return Math.min(4 * 2 ** 30, totalmem() / 4);
}
let limit = defaultLimit();

/** Bound the bytes of free buffers this thread's pool keeps (tests; DIFFACTOR_POOL_MB sets the default). */
export function setPoolLimit(bytes: number): void {
  limit = bytes;
  evict();
}

function evict(): void {
  for (const [buf, bytes] of freeOrder) {
    if (freeBytes <= limit) break;
    freeOrder.delete(buf);
    freeBytes -= bytes;
    const list = free.get(bytes)!;
    list.splice(list.indexOf(buf), 1);
    if (!list.length) free.delete(bytes);
    stats.evicted++;
  }
}

/** Put a released buffer in the pool, newest last, and keep the pool within its bound. */
function release(buf: ArrayBufferLike): void {
  stats.released++;
  let list = free.get(buf.byteLength);
  if (!list) free.set(buf.byteLength, (list = []));
  list.push(buf);
  freeOrder.set(buf, buf.byteLength);
  freeBytes += buf.byteLength;
  if (freeBytes > limit) evict();
}

/**
 * A buffer of exactly `bytes`, recycled when one is free. Zero-filled unless `zero` is false (then
 * a recycled buffer keeps its old contents; a new one is zero anyway).
 */
export function acquireBuffer(bytes: number, zero = true): ArrayBufferLike {
  const list = free.get(bytes);
  const buf = list?.pop();
  if (buf) {
    freeOrder.delete(buf);
    freeBytes -= bytes;
    stats.reused++;
    // Word-wide fill: a byte-wide fill of a SharedArrayBuffer is ~5x slower in V8.
    if (zero) (bytes % 4 === 0 ? new Int32Array(buf) : new Uint8Array(buf)).fill(0);
    return buf;
  }
  stats.created++;
  return new SharedBuffer(bytes);
}

/** Register an allocation with the innermost scope (no-op outside scopes). */
export function track(o: Owned): void {
  const s = scopes[scopes.length - 1];
  if (s) s.push(o);
}

export function poolStats(): { created: number; reused: number; released: number; evicted: number; free: number; freeBytes: number } {
  return { ...stats, free: freeOrder.size, freeBytes };
}

/** Drop every free buffer (tests; memory pressure). */
export function clearPool(): void {
  free.clear();
  freeOrder.clear();
  freeBytes = 0;
}

export function beginScope(): Owned[] {
  const s: Owned[] = [];
  scopes.push(s);
  return s;
}

/**
 * Close a scope: release every buffer it owns that is not in `keepBuffers`, not kept and not
 * frozen. Owned objects that survive move to the parent scope (so an outer tidy can free them).
 */
export function endScope(scope: Owned[], keepBuffers: Set<ArrayBufferLike>): void {
  if (scopes[scopes.length - 1] !== scope) throw new Error('endScope: scopes must close in LIFO order');
  scopes.pop();
  for (const o of scope) if (o.kept || o.frozen) keepBuffers.add(o.buffer);
  const parent = scopes[scopes.length - 1];
  const releasedBufs = new Set<ArrayBufferLike>();
  for (const o of scope) {
    if (!o.owner || keepBuffers.has(o.buffer)) continue;
    releasedBufs.add(o.buffer);
    release(o.buffer);
  }
  for (const o of scope) {
    if (releasedBufs.has(o.buffer)) o.released();
    else if (parent) parent.push(o);
  }
}

/** Run fn with no active scope: what it allocates is permanent (parameters, optimiser state). */
export function untracked<T>(fn: () => T): T {
  const saved = scopes.splice(0, scopes.length);
  try {
    return fn();
  } finally {
    scopes.push(...saved);
  }
}

/**
 * An arena: a scope that outlives a call, for an actor's step whose messages (forward, later
 * backward, then release) arrive one by one, possibly interleaved with other steps' messages.
 * `inArena` makes it the innermost scope while fn runs; `closeArena` releases what it owns in any
 * order relative to other arenas (tidy scopes nested inside still close LIFO as usual).
 */
export type Arena = Owned[];

export function openArena(): Arena {
  return [];
}

export function inArena<T>(arena: Arena, fn: () => T): T {
  scopes.push(arena);
  try {
    return fn();
  } finally {
    if (scopes.pop() !== arena) throw new Error('inArena: a scope opened inside the arena was not closed');
  }
}

/** Release every buffer the arena owns except kept or frozen ones (those are simply forgotten). */
export function closeArena(arena: Arena): void {
  if (scopes.includes(arena)) throw new Error('closeArena: the arena is in use');
  const keep = new Set<ArrayBufferLike>();
  for (const o of arena) if (o.kept || o.frozen) keep.add(o.buffer);
  const releasedBufs = new Set<ArrayBufferLike>();
  for (const o of arena) {
    if (!o.owner || keep.has(o.buffer) || releasedBufs.has(o.buffer)) continue;
    releasedBufs.add(o.buffer);
    release(o.buffer);
  }
  for (const o of arena) if (releasedBufs.has(o.buffer)) o.released();
  arena.length = 0;
}
