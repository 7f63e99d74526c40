// How the shared-memory mode is decided (src/tensor/sab.ts) and reported (`diffactor info`), each
// case in a child process since the mode is fixed when the module loads: SharedArrayBuffer when
// the runtime has it; the ArrayBuffer fallback with DIFFACTOR_NO_SAB=1 or in a runtime without
// SharedArrayBuffer (simulated by deleting the global before anything loads), where tensors still
// work and go on the wire as copies; a malformed DIFFACTOR_NO_SAB is refused.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const sab = new URL('../../src/tensor/sab.ts', import.meta.url).href;
const tensorTs = new URL('../../src/tensor/tensor.ts', import.meta.url).href;
const wire = new URL('../../src/actors/wire.ts', import.meta.url).href;
const info = new URL('../../src/cli/info.ts', import.meta.url).href;

// Loads the modules, allocates a tensor, puts it on the wire, prints what it saw.
const probe = `
const { sharedMemoryInfo, hasSharedMemory, isSharedBuffer, SharedBuffer } = await import(${JSON.stringify(sab)});
const { tensor, fromData } = await import(${JSON.stringify(tensorTs)});
const { toWire } = await import(${JSON.stringify(wire)});
const { sharedMemoryLine } = await import(${JSON.stringify(info)});
const t = tensor([1, 2, 3]);
let wireShared = null, wireError = null;
try { wireShared = isSharedBuffer(toWire({ t }).t.data.buffer); } catch (e) { wireError = e.message; }
let plainError = null; // a tensor over a plain ArrayBuffer (not pool storage)
try { toWire({ p: fromData(new Float32Array(2), [2]) }); } catch (e) { plainError = e.message; }
console.log(JSON.stringify({
  info: sharedMemoryInfo, hasSharedMemory, storage: SharedBuffer.name,
  tensorShared: isSharedBuffer(t.buffer), frozen: t.frozen, wireShared, wireError, plainError, line: sharedMemoryLine(),
}));
`;

function run(args: string[], env: Record<string, string | undefined>) {
  const e = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete e[k];
  return spawnSync(process.execPath, args, { cwd: root, env: e, encoding: 'utf8' });
}

function probeWith(env: Record<string, string | undefined>, preload: string[] = []) {
  const r = run(['--import', 'tsx', ...preload, '--input-type=module', '-e', probe], env);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('shared-memory mode', () => {
  it('SharedArrayBuffer when the runtime has it (DIFFACTOR_NO_SAB unset or 0)', () => {
    for (const v of [undefined, '0']) {
      const p = probeWith({ DIFFACTOR_NO_SAB: v });
      expect(p.info).toEqual({ sharedMemory: true, transfer: 'shared', reason: null });
      expect(p).toMatchObject({ hasSharedMemory: true, storage: 'SharedArrayBuffer', tensorShared: true, wireShared: true, frozen: true });
      expect(p.line).toBe('SharedArrayBuffer (actors share tensors, no copy)');
      // With shared memory a tensor that would be copied is a sender's bug.
      expect(p.plainError).toBe("message field 'p': tensor [2] is not in a SharedArrayBuffer and would be copied");
    }
  });

  it('DIFFACTOR_NO_SAB=1: ArrayBuffer storage, tensors go on the wire as copies', () => {
    const p = probeWith({ DIFFACTOR_NO_SAB: '1' });
    expect(p.info).toEqual({ sharedMemory: false, transfer: 'copy', reason: 'DIFFACTOR_NO_SAB=1' });
    expect(p).toMatchObject({ hasSharedMemory: false, storage: 'ArrayBuffer', tensorShared: false, wireShared: false, wireError: null, plainError: null, frozen: true });
    expect(p.line).toMatch(/^ArrayBuffer fallback \(DIFFACTOR_NO_SAB=1\): actors copy every tensor they send; .*needs SharedArrayBuffer \(train with --no-samples\)$/);
  });

  it('a runtime without SharedArrayBuffer: the same fallback, and no code names the missing global', () => {
    // Deleted after tsx registers: Node's own module loader hooks need the constructor.
    const p = probeWith({ DIFFACTOR_NO_SAB: undefined }, ['--import', 'data:text/javascript,delete globalThis.SharedArrayBuffer']);
    expect(p.info).toEqual({ sharedMemory: false, transfer: 'copy', reason: 'this runtime has no SharedArrayBuffer' });
    expect(p).toMatchObject({ hasSharedMemory: false, storage: 'ArrayBuffer', tensorShared: false, wireShared: false, wireError: null, plainError: null });
  });

  it('a malformed DIFFACTOR_NO_SAB is refused', () => {
    const r = run(['--import', 'tsx', '--input-type=module', '-e', `await import(${JSON.stringify(sab)})`], { DIFFACTOR_NO_SAB: 'yes' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("DIFFACTOR_NO_SAB must be '1' (use ArrayBuffer, copy tensors between actors) or '0', got 'yes'");
  });
});

describe('diffactor info', () => {
  const cli = fileURLToPath(new URL('../../bin/diffactor.js', import.meta.url));

  it('--json reports sharedMemory, the tensor transfer and why', () => {
    const on = run([cli, 'info', '--json'], { DIFFACTOR_NO_SAB: undefined });
    expect(on.status, on.stderr).toBe(0);
    expect(JSON.parse(on.stdout)).toMatchObject({ sharedMemory: true, tensorTransfer: 'shared', sharedMemoryReason: null });
    const off = run([cli, 'info', '--json'], { DIFFACTOR_NO_SAB: '1' });
    expect(off.status, off.stderr).toBe(0);
    expect(JSON.parse(off.stdout)).toMatchObject({ sharedMemory: false, tensorTransfer: 'copy', sharedMemoryReason: 'DIFFACTOR_NO_SAB=1' });
  });

  it('says what is true in text too', () => {
    const off = run([cli, 'info'], { DIFFACTOR_NO_SAB: '1' });
    expect(off.status, off.stderr).toBe(0);
    expect(off.stdout).toContain('shared memory: ArrayBuffer fallback (DIFFACTOR_NO_SAB=1): actors copy every tensor they send;');
    const on = run([cli, 'info'], { DIFFACTOR_NO_SAB: undefined });
    expect(on.stdout).toContain('shared memory: SharedArrayBuffer (actors share tensors, no copy)');
  });
});
