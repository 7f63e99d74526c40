// Atomic file replacement: write a temporary file beside the target, fsync it, rename it over the
// target, fsync the directory. A crash or a failed write never leaves a half-written target, and
// an existing target stays intact when writing fails. This file is only the write; it does not
// lock (two writers racing on one path leave one of the two complete files, never a mix).
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Data for writeFileAtomic: bytes, text (UTF-8), or chunks written in order (large checkpoints). */
export type AtomicData = string | Uint8Array | Iterable<Uint8Array>;

function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
}

/** The rename must reach the disk too, or a crash can bring back the old file (or none). */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some platforms and file systems refuse fsync on directories; the file itself is synced.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** `.NAME.PID.HEX.tmp`: the temporary file of writeFileAtomic, named after its writer's pid. */
const TEMP = /^\.(.+)\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/**
 * Remove temporary files left in `dir` by writers that died mid-write (a kill during a checkpoint
 * write leaves one, up to the checkpoint's size). A file of a live process is kept: it may be
 * writing. `alive` says whether a pid runs (default: process.kill(pid, 0)). Returns what it removed.
 */
export function removeStaleTemps(dir: string, alive: (pid: number) => boolean): string[] {
  if (!fs.existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = TEMP.exec(name);
    if (!m || alive(Number(m[2]))) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

export function writeFileAtomic(target: string, data: AtomicData): void {
  const dir = path.dirname(path.resolve(target));
  // Same directory: rename is atomic only within one file system.
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', 0o666);
    if (typeof data === 'string') writeAll(fd, Buffer.from(data, 'utf8'));
    else if (data instanceof Uint8Array) writeAll(fd, data);
    else for (const chunk of data) writeAll(fd, chunk);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) {
      try { fs.closeSync(fd); } catch { /* already failing; report the first error */ }
    }
    try { fs.unlinkSync(tmp); } catch { /* never created, or already renamed */ }
    throw new Error(`writeFileAtomic ${target}: ${(e as Error).message}`, { cause: e });
  }
  fsyncDir(dir);
}
