// How requests reach an actor. WorkerTransport: the actor lives in its own worker thread, reached
// through a dedicated MessageChannel (one per edge; the worker's parentPort only carries its
// lifecycle). LocalTransport: the same ActorCore in this thread, for protocol tests that want
// no threads and for debugging with one stack. Both report a dead actor through onExit.
// A worker runs in the coordinator's shared-memory mode (src/tensor/sab.ts): it is started with
// DIFFACTOR_NO_SAB set to match, and host.ts refuses to serve if the two still disagree.
import { MessageChannel, type Worker } from 'node:worker_threads';
import { tsWorker } from '../util/tsWorker.ts';
import { ActorCore, type BehaviourFactory } from './core.ts';
import { NO_SAB_ENV, sharedMemoryInfo } from '../tensor/sab.ts';
import type { ActorWorkerData } from './host.ts';
import type { Reply, Request } from './messages.ts';

export interface Transport {
  post(req: Request): void;
  onReply(fn: (r: Reply) => void): void;
  /** The actor died (worker error or exit); pending requests will never be answered. */
  onExit(fn: (why: Error) => void): void;
  terminate(): Promise<void>;
}

export class WorkerTransport implements Transport {
  private readonly worker: Worker;
  private readonly port;
  private exitFns: ((why: Error) => void)[] = [];
  private closing = false;

  constructor(readonly name: string, entry: URL) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const workerData: ActorWorkerData = { name, port: port2, transfer: sharedMemoryInfo.transfer };
    this.worker = tsWorker(entry, {
      workerData,
      transferList: [port2],
      // The worker decides its mode from its environment when src/tensor/sab.ts loads there.
      env: { ...process.env, [NO_SAB_ENV]: sharedMemoryInfo.sharedMemory ? '0' : '1' },
    });
    let lastError: Error | null = null;
    this.worker.on('error', (e) => { lastError = e; });
    this.worker.on('exit', (code) => {
      this.port.close();
      if (this.closing) return;
      const why = lastError ?? new Error(`worker exited with code ${code}`);
      for (const fn of this.exitFns) fn(why);
    });
  }

  post(req: Request): void { this.port.postMessage(req); }
  onReply(fn: (r: Reply) => void): void { this.port.on('message', fn); }
  onExit(fn: (why: Error) => void): void { this.exitFns.push(fn); }

  async terminate(): Promise<void> {
    this.closing = true;
    this.port.close();
    await this.worker.terminate();
  }
}

export class LocalTransport implements Transport {
  private readonly core: ActorCore;
  private replyFns: ((r: Reply) => void)[] = [];
  private exitFns: ((why: Error) => void)[] = [];
  private dead = false;

  constructor(readonly name: string, factory: BehaviourFactory) {
    this.core = new ActorCore(name, factory);
  }

  post(req: Request): void {
    if (this.dead) return;
    if (req.type === 'crash') {
      this.dead = true;
      queueMicrotask(() => { for (const fn of this.exitFns) fn(new Error('actor crashed (test hook)')); });
      return;
    }
    // Asynchronous like a port, so callers cannot depend on synchronous replies.
    setImmediate(() => {
      const r = this.core.handle(req);
      for (const fn of this.replyFns) fn(r);
    });
  }

  onReply(fn: (r: Reply) => void): void { this.replyFns.push(fn); }
  onExit(fn: (why: Error) => void): void { this.exitFns.push(fn); }
  async terminate(): Promise<void> { this.dead = true; }
}
