// `diffactor info`: which kernels run and why.
import { backendInfo } from '../kernels/index.ts';
import { hasSharedMemory } from '../tensor/sab.ts';
import os from 'node:os';

export function info(o: { json?: boolean }): void {
  const rec = { ...backendInfo, sharedMemory: hasSharedMemory, node: process.version, cpus: os.cpus().length };
  if (o.json) {
    console.log(JSON.stringify(rec));
    return;
  }
  console.log(`backend:       ${rec.backend}${rec.backend === 'native' ? ` (isa ${rec.isa}, ${rec.threads} pool threads)` : ''}`);
  if (rec.reason) console.log(`why not native: ${rec.reason}`);
  console.log(`shared memory: ${rec.sharedMemory ? 'SharedArrayBuffer' : 'ArrayBuffer fallback (actors will copy)'}`);
  console.log(`node:          ${rec.node} on ${rec.cpus} cores`);
}
