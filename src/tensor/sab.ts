// Shared memory for tensors, decided once when this module loads. Node 20 has SharedArrayBuffer
// natively, and then tensor storage is shared: a tensor sent to another actor crosses as a view of
// the same memory (no copy). Without it — a runtime that lacks the constructor, a browser page that
// is not cross-origin isolated, or DIFFACTOR_NO_SAB=1 to run that path on purpose — storage is a
// plain ArrayBuffer and every tensor a message carries between threads is copied (structured
// clone); leases and freezing behave the same, replies work the same (src/actors/wire.ts).
// There is no polyfill: memory cannot be shared between threads without SharedArrayBuffer, so
// the fallback copies instead, and callers that need real sharing (SamplePool) refuse.
// A worker thread reads the mode from its own environment; WorkerTransport starts actor workers
// with the coordinator's mode, and host.ts checks that both sides agree.

export type TensorTransfer = 'shared' | 'copy';

export interface SharedMemoryInfo {
  /** Tensor storage is SharedArrayBuffer. */
  readonly sharedMemory: boolean;
  /** How a tensor in a message reaches another thread: a view of the same memory, or a copy. */
  readonly transfer: TensorTransfer;
  /** Why shared memory is off (null when it is on). */
  readonly reason: string | null;
}

/** The environment variable that forces the ArrayBuffer fallback ('1'; '0' or unset: off). */
export const NO_SAB_ENV = 'DIFFACTOR_NO_SAB';

// The runtime's constructor, if any (read here, so code below never names a missing global).
const NativeSAB: SharedArrayBufferConstructor | undefined =
  typeof globalThis.SharedArrayBuffer === 'function' ? globalThis.SharedArrayBuffer : undefined;

function decide(): SharedMemoryInfo {
  const env = typeof process === 'object' ? process.env?.[NO_SAB_ENV] : undefined;
  if (env !== undefined && env !== '' && env !== '0' && env !== '1') {
    throw new Error(`${NO_SAB_ENV} must be '1' (use ArrayBuffer, copy tensors between actors) or '0', got '${env}'`);
  }
  if (!NativeSAB) return { sharedMemory: false, transfer: 'copy', reason: 'this runtime has no SharedArrayBuffer' };
  if (env === '1') return { sharedMemory: false, transfer: 'copy', reason: `${NO_SAB_ENV}=1` };
  return { sharedMemory: true, transfer: 'shared', reason: null };
}

export const sharedMemoryInfo: SharedMemoryInfo = Object.freeze(decide());

export const hasSharedMemory: boolean = sharedMemoryInfo.sharedMemory;

/** The constructor of tensor storage: SharedArrayBuffer, or ArrayBuffer in the fallback. */
export const SharedBuffer: { new (byteLength: number): ArrayBufferLike } = hasSharedMemory
  ? NativeSAB!
  : ArrayBuffer;

/** Is this buffer shared memory? (False for every buffer in a runtime without SharedArrayBuffer.) */
export function isSharedBuffer(b: ArrayBufferLike): boolean {
  return NativeSAB !== undefined && b instanceof NativeSAB;
}
