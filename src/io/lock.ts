// An exclusive lock on a run directory, so two runs never write one directory at once (their
// metrics interleaved and their checkpoints alternated). The lock is DIR/.lock, created with O_EXCL
// and holding the owner's pid, host, start time and command line. A lock whose owner is gone (same
// host, no such process) is stale: it is taken over, and the takeover is reported. Not here: what
// a run does in the directory (src/run/).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const LOCK_FILE = '.lock';

export interface LockOwner { pid: number; host: string; started: string; command: string }

export class RunDirLocked extends Error {
  constructor(readonly dir: string, readonly owner: LockOwner) {
    super(`${dir} is in use by another run: pid ${owner.pid} on ${owner.host}, started ${owner.started} (${owner.command}); wait for it to end or stop it — if that process is gone on another machine, delete ${path.join(dir, LOCK_FILE)}`);
    this.name = 'RunDirLocked';
  }
}

/** Whether a process with this pid exists on this machine (EPERM: it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): LockOwner | null {
  try {
    const o = JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
    return typeof o.pid === 'number' ? o : null;
  } catch {
    return null; // unreadable or torn: its writer died mid-write
  }
}

export interface RunLock {
  readonly file: string;
  /** A stale lock this one replaced, if any. */
  readonly replaced: LockOwner | null;
  release(): void;
}

/** The live owner of DIR's lock `name` on this machine, or null (none, stale, or torn). */
export function lockHolder(dir: string, name = LOCK_FILE): LockOwner | null {
  const owner = readOwner(path.join(dir, name));
  return owner && (owner.host !== os.hostname() || processAlive(owner.pid)) ? owner : null;
}

/**
 * Take DIR's lock or throw RunDirLocked naming the holder. The directory must exist. `name`: another
 * lock of the same kind in DIR (compare's claim on a run, held beside the run's own lock).
 */
export function lockRunDir(dir: string, name = LOCK_FILE): RunLock {
  const file = path.join(dir, name);
  const me: LockOwner = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command: process.argv.slice(1).join(' ') };
  let replaced: LockOwner | null = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o644);
      fs.writeSync(fd, `${JSON.stringify(me)}\n`);
      fs.closeSync(fd);
      let held = true;
      return {
        file,
        replaced,
        release() {
          if (!held) return;
          held = false;
          // Only our own lock: never delete one a later run took over.
          if (readOwner(file)?.pid === me.pid) fs.rmSync(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot lock ${dir}: ${(e as Error).message}`, { cause: e });
    }
    const owner = readOwner(file);
    const stale = owner === null || (owner.host === me.host && !processAlive(owner.pid));
    if (!stale) throw new RunDirLocked(dir, owner!);
    replaced = owner;
    fs.rmSync(file, { force: true });
  }
  throw new Error(`cannot lock ${dir}: its lock file keeps coming back`);
}
