// The run-directory lock: a second holder is refused naming the first (pid, host, command); a
// lock whose process is gone is taken over and reported; release removes only our own lock.
// And stale temporary files of dead writers are removed, live writers' kept.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir, hostname } from 'node:os';
import path from 'node:path';
import { LOCK_FILE, RunDirLocked, lockRunDir, processAlive } from '../../src/io/lock.ts';
import { removeStaleTemps, writeFileAtomic } from '../../src/io/atomic.ts';

/** The pid of a process that has already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(r.stdout);
  expect(processAlive(pid)).toBe(false);
  return pid;
}

describe('lockRunDir', () => {
  it('refuses a second holder, naming the first', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lock-'));
    const a = lockRunDir(dir);
    expect(a.replaced).toBeNull();
    // Another live process holds it: write its owner record as that process would.
    a.release();
    writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, host: hostname(), started: '2026-12-06T00:00:00Z', command: 'diffactor train --spec x.yaml' }));
    let err: unknown;
    try { lockRunDir(dir); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(RunDirLocked);
    expect((err as Error).message).toMatch(new RegExp(`in use by another run: pid ${process.ppid} on ${hostname()}.*diffactor train --spec x\\.yaml`));
  });

  it('our own second attempt is refused too (same process, lock held)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lock-'));
    const a = lockRunDir(dir);
    expect(() => lockRunDir(dir)).toThrow(RunDirLocked);
    a.release();
    expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    lockRunDir(dir).release();
  });

  it('takes over a stale lock (its process is gone) and says whose it was', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lock-'));
    const pid = deadPid();
    writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid, host: hostname(), started: 'then', command: 'old run' }));
    const l = lockRunDir(dir);
    expect(l.replaced?.pid).toBe(pid);
    expect(JSON.parse(readFileSync(l.file, 'utf8')).pid).toBe(process.pid);
    l.release();
  });

  it('a torn lock file (its writer died mid-write) is stale', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lock-'));
    writeFileSync(path.join(dir, LOCK_FILE), '{"pid": 12');
    lockRunDir(dir).release();
  });

  it('release leaves a lock another run took over', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lock-'));
    const l = lockRunDir(dir);
    writeFileSync(l.file, JSON.stringify({ pid: process.ppid, host: hostname(), started: 'now', command: 'other' }));
    l.release();
    expect(existsSync(l.file)).toBe(true);
  });
});

describe('removeStaleTemps', () => {
  it('removes the temporary files of dead writers and keeps live ones and everything else', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'temps-'));
    const dead = deadPid();
    const names = [
      `.checkpoint.safetensors.${dead}.0123456789ab.tmp`,
      `.metrics.jsonl.${process.pid}.abcdefabcdef.tmp`,
      'checkpoint.safetensors',
      '.notes.tmp',
    ];
    for (const n of names) writeFileSync(path.join(dir, n), 'x');
    expect(removeStaleTemps(dir, processAlive)).toEqual([names[0]]);
    expect(readdirSync(dir).sort()).toEqual(names.slice(1).sort());
  });

  it('recognises the names writeFileAtomic gives its temporary files', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'temps-'));
    writeFileAtomic(path.join(dir, 'a.json'), '{}');
    // a writer that "died": the same pattern with a dead pid
    writeFileSync(path.join(dir, `.a.json.${deadPid()}.ffffffffffff.tmp`), 'half');
    expect(removeStaleTemps(dir, () => false)).toHaveLength(1);
    expect(readdirSync(dir)).toEqual(['a.json']);
  });
});
