// The ArrayBuffer fallback of src/tensor/sab.ts, for real: this file runs with DIFFACTOR_NO_SAB=1
// (set before any module loads), so tensors live in ArrayBuffers and every tensor a message
// carries between threads is a copy. A small exchange through worker actors gives exactly what
// the same exchange gives with shared memory (run in a child process), leases and replies work,
// and nothing is shared: a write by the receiver never reaches the sender, nor the reverse — while
// the same probes do see the writes with shared memory (so they can tell).
import { describe, expect, it, vi } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { MessageChannel } from 'node:worker_threads';

const saved = vi.hoisted(() => {
  const before = process.env.DIFFACTOR_NO_SAB;
  process.env.DIFFACTOR_NO_SAB = '1';
  return before;
});

import { SharedBuffer, hasSharedMemory, sharedMemoryInfo } from '../../src/tensor/sab.ts';
import { empty, fromData, tensor, viewOf } from '../../src/tensor/tensor.ts';
import { toWire, fromWire, type WireTensor } from '../../src/actors/wire.ts';
import { tsWorker } from '../../src/util/tsWorker.ts';
import { runExchange, type ExchangeResult } from './fixtures/exchange.ts';

// The mode was fixed when sab.ts loaded; workers get it from WorkerTransport, not from process.env.
if (saved === undefined) delete process.env.DIFFACTOR_NO_SAB;
else process.env.DIFFACTOR_NO_SAB = saved;

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The same exchange in a child process with shared memory (the reference). */
async function sharedRun(): Promise<ExchangeResult> {
  const { stdout } = await promisify(execFile)(
    process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/exchangeMain.ts', import.meta.url))],
    { cwd: root, env: { ...process.env, DIFFACTOR_NO_SAB: '0' } },
  );
  return JSON.parse(stdout) as ExchangeResult;
}

describe('ArrayBuffer fallback (DIFFACTOR_NO_SAB=1)', () => {
  it('is on in this process: tensor storage is ArrayBuffer', () => {
    expect(sharedMemoryInfo).toEqual({ sharedMemory: false, transfer: 'copy', reason: 'DIFFACTOR_NO_SAB=1' });
    expect(hasSharedMemory).toBe(false);
    expect(SharedBuffer).toBe(ArrayBuffer);
    const t = empty([3, 4]);
    expect(t.buffer).toBeInstanceOf(ArrayBuffer);
    expect(t.buffer).not.toBeInstanceOf(SharedArrayBuffer);
  });

  it('toWire: a whole-buffer view goes as it is (the clone copies it); a partial or SharedArrayBuffer view is cut to a compact copy', () => {
    const whole = tensor([1, 2, 3]);
    const big = tensor([0, 0, 4, 5, 6, 0]);
    const part = fromData(big.data.subarray(2, 5), [3]);
    const shared = fromData(new Float32Array(new SharedArrayBuffer(12)).fill(8), [3]);
    const w = toWire({ whole, part, shared, view: viewOf(whole, [1, 3]) }) as Record<string, WireTensor>;
    expect(w.whole.data).toBe(whole.data);
    expect(w.view.data).toBe(whole.data);
    expect(w.part.data).not.toBe(part.data);
    expect(w.part.data.buffer.byteLength).toBe(12);
    expect(Array.from(w.part.data)).toEqual([4, 5, 6]);
    expect(w.shared.data.buffer).toBeInstanceOf(ArrayBuffer);
    expect(w.shared.data.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expect(Array.from(w.shared.data)).toEqual([8, 8, 8]);
    for (const t of [whole, part, shared]) expect(t.frozen).toBe(true); // leases as with shared memory
    // What a port does to the record: a copy, rebuilt frozen on the other side.
    const got = fromWire<{ whole: ReturnType<typeof tensor> }>(structuredClone(w));
    expect(got.whole.frozen).toBe(true);
    got.whole.data[0] = -1;
    expect(whole.data[0]).toBe(1);
  });

  it('a worker exchange gives what the shared-memory path gives, and shares nothing', async () => {
    const [copy, shared] = await Promise.all([runExchange('worker'), sharedRun()]);
    expect(copy.coordinator.transfer).toBe('copy');
    expect(copy.actor).toEqual(copy.coordinator); // the worker runs in the coordinator's mode
    expect(shared.coordinator.transfer).toBe('shared');
    expect(shared.actor.transfer).toBe('shared');

    expect(copy.values).toEqual(shared.values);
    expect(copy.values).toMatchObject({
      a: { out: [0.5, -2, 6, 2, -5, 12], loss: 13.5, grad: [5, 7, 9] },
      leases: { xFrozenInStep: true, replyFrozen: true, writableAfterRelease: true },
      pokeRead: -1,
    });
    // Every probe sees the other side's writes with shared memory, and none with the fallback.
    expect(Object.values(shared.sharing).every(Boolean), JSON.stringify(shared.sharing)).toBe(true);
    expect(copy.sharing).toEqual({
      actorGotShared: false, coordinatorGotShared: false, lenderSawWrite: false, senderSawWrite: false, receiverSawSenderWrite: false,
    });
    // A view of 3 floats inside a 7-float buffer travels as those 3 floats, not the whole buffer.
    expect(copy.partBufferBytes).toBe(12);
    expect(shared.partBufferBytes).toBe(28);
  });

  it('in-thread actors (local placement) compute the same values', async () => {
    const [local, worker] = await Promise.all([runExchange('local'), runExchange('worker')]);
    expect(local.values).toEqual(worker.values);
  });

  it('a worker in the other mode refuses to serve, naming both', async () => {
    const { port1, port2 } = new MessageChannel();
    const w = tsWorker(new URL('./fixtures/probeWorker.ts', import.meta.url), {
      workerData: { name: 'odd', port: port2, transfer: 'shared' },
      transferList: [port2],
      env: { ...process.env, DIFFACTOR_NO_SAB: '1' },
    });
    const err = await new Promise<Error>((resolve) => w.once('error', resolve));
    port1.close();
    await w.terminate();
    expect(err.message).toBe("actor worker 'odd': the coordinator moves tensors by shared memory, this worker by copy (DIFFACTOR_NO_SAB=1)");
  });
});

