// A worker thread's side of an actor: the coordinator hands it one end of a MessageChannel in
// workerData; every request on that port goes through an ActorCore, one at a time, and its reply
// goes back on the same port. Each file in workers/ is one line calling serveActor with a role.
// Both ends must move tensors the same way (shared memory, or the ArrayBuffer fallback's copies):
// a worker whose mode differs from the coordinator's refuses to start.
import { workerData, type MessagePort } from 'node:worker_threads';
import { ActorCore, type BehaviourFactory } from './core.ts';
import type { Request } from './messages.ts';
import { sharedMemoryInfo, type TensorTransfer } from '../tensor/sab.ts';

export interface ActorWorkerData {
  name: string;
  port: MessagePort;
  /** The coordinator's tensor transfer (src/tensor/sab.ts); absent from older callers. */
  transfer?: TensorTransfer;
}

export function serveActor(factory: BehaviourFactory): void {
  const { name, port, transfer } = workerData as ActorWorkerData;
  if (!port) throw new Error(`actor worker '${name}': no MessagePort in workerData (start it with ActorRef.spawn)`);
  if (transfer && transfer !== sharedMemoryInfo.transfer) {
    throw new Error(`actor worker '${name}': the coordinator moves tensors by ${transfer === 'shared' ? 'shared memory' : 'copy'}, this worker by ${sharedMemoryInfo.transfer === 'shared' ? 'shared memory' : `copy (${sharedMemoryInfo.reason})`}`);
  }
  const core = new ActorCore(name, factory);
  port.on('message', (req: Request) => {
    if (req.type === 'crash') {
      // Test hook for supervision: die the way a native fault or an OOM would, without a reply.
      process.exit(70);
    }
    port.postMessage(core.handle(req));
  });
}
