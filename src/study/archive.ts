// A study outlives the machine it ran on: `compare --archive DIR` copies each finished run's records
// (metrics, evaluation grids, inputs, final evaluations — not its checkpoints, which are large) into
// DIR, a folder committed with the docs, and restores them into --out on a machine that lacks them.
// A restored run is finished (FINISHED_FILE), so compare reports it without training; only a final
// evaluation at a setting it was never measured at needs the checkpoint back.
import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';

/** What a run's records are: everything in its directory but checkpoints, the locks and temporaries. */
export function isRecord(name: string): boolean {
  return !(name.endsWith('.safetensors') || name === 'checkpoints' || name === '.lock' || name === '.claim' || name.includes('.tmp'));
}

/** Copy the records of the finished run in `dir` to `archive/<its name>`, replacing an older copy whole. */
export function archiveRun(dir: string, archive: string): string {
  const dest = path.join(archive, path.basename(dir));
  const tmp = `${dest}.tmp-${process.pid}`;
  mkdirSync(archive, { recursive: true });
  rmSync(tmp, { recursive: true, force: true });
  cpSync(dir, tmp, { recursive: true, filter: (src) => src === dir || isRecord(path.basename(src)) });
  // The old copy goes only once the new one is whole. A kill between the two lines leaves the new
  // copy under its temporary name, which the next archiving of the run replaces.
  rmSync(dest, { recursive: true, force: true });
  renameSync(tmp, dest);
  return dest;
}

/**
 * Restore `archive/<name of dir>` into `dir` when `dir` does not exist and the archive holds the run
 * finished (`finishedFile` in it). Returns whether it did. A started run in `dir` is never touched.
 */
export function restoreRun(dir: string, archive: string, finishedFile: string): boolean {
  const src = path.join(archive, path.basename(dir));
  if (existsSync(dir) || !existsSync(path.join(src, finishedFile))) return false;
  mkdirSync(path.dirname(dir), { recursive: true });
  cpSync(src, dir, { recursive: true });
  return true;
}
