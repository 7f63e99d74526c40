// Start a worker_thread whose entry is a TypeScript file (tsx registered inside the worker).
import { Worker, type WorkerOptions } from 'node:worker_threads';

const bootstrap = new URL('./tsx-bootstrap.mjs', import.meta.url);

export function tsWorker(entry: URL, options: Omit<WorkerOptions, 'argv'> = {}): Worker {
  return new Worker(bootstrap, { ...options, argv: [entry.href] });
}
