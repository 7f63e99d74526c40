// Shared memory for tensors. Node 20 has SharedArrayBuffer natively; a runtime without it (or a
// browser page that is not cross-origin isolated) falls back to ArrayBuffer, which still works in
// one thread but cannot be shared between actors without copying.
export const hasSharedMemory: boolean = typeof globalThis.SharedArrayBuffer === 'function';

export const SharedBuffer: { new (byteLength: number): ArrayBufferLike } = hasSharedMemory
  ? globalThis.SharedArrayBuffer
  : ArrayBuffer;
