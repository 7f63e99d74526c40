// Worker for rng.test.ts: draws from a named stream in another thread.
import { parentPort, workerData } from 'node:worker_threads';
import { Rng } from '../../src/tensor/rng.ts';

parentPort!.postMessage(Array.from(new Rng(workerData.seed).child(workerData.stream).normalArray(16)));
