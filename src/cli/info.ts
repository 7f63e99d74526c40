// `diffactor info`: which kernels run and why, and how tensors cross actors (src/tensor/sab.ts).
import { backendInfo } from '../kernels/index.ts';
import { sharedMemoryInfo } from '../tensor/sab.ts';
import os from 'node:os';

export type InfoRecord = typeof backendInfo & {
  sharedMemory: boolean;
  /** 'shared': tensors cross actors as views of the same SharedArrayBuffer; 'copy': the ArrayBuffer fallback. */
  tensorTransfer: 'shared' | 'copy';
  /** Why shared memory is off (null when on). */
  sharedMemoryReason: string | null;
  node: string;
  cpus: number;
};

export function infoRecord(): InfoRecord {
  return {
    ...backendInfo,
    sharedMemory: sharedMemoryInfo.sharedMemory,
    tensorTransfer: sharedMemoryInfo.transfer,
    sharedMemoryReason: sharedMemoryInfo.reason,
    node: process.version,
    cpus: os.cpus().length,
  };
}

/** The `shared memory:` line: what is true of this process. */
export function sharedMemoryLine(i = sharedMemoryInfo): string {
  if (i.sharedMemory) return 'SharedArrayBuffer (actors share tensors, no copy)';
  return `ArrayBuffer fallback (${i.reason}): actors copy every tensor they send; `
    + 'the actor run\'s end-of-run sample grid needs SharedArrayBuffer (train with --no-samples)';
}

export function info(o: { json?: boolean }): void {
  const rec = infoRecord();
  if (o.json) {
    console.log(JSON.stringify(rec));
    return;
  }
  console.log(`backend:       ${rec.backend}${rec.backend === 'native' ? ` (isa ${rec.isa}, ${rec.threads} pool threads)` : ''}`);
  if (rec.reason) console.log(`why not native: ${rec.reason}`);
  console.log(`shared memory: ${sharedMemoryLine()}`);
  console.log(`node:          ${rec.node} on ${rec.cpus} cores`);
}
