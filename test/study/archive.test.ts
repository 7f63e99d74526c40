// The study archive (src/study/archive.ts): records only, an older copy replaced whole, and a restore
// that never touches a run already in --out.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { archiveRun, isRecord, restoreRun } from '../../src/study/archive.ts';

function fakeRun(dir: string, metrics: string): void {
  mkdirSync(path.join(dir, 'checkpoints'), { recursive: true });
  mkdirSync(path.join(dir, 'evals'), { recursive: true });
  writeFileSync(path.join(dir, 'metrics.jsonl'), metrics);
  writeFileSync(path.join(dir, 'done.json'), '{}');
  writeFileSync(path.join(dir, 'evals', 'step-000500.png'), 'png');
  writeFileSync(path.join(dir, 'checkpoint.safetensors'), 'big');
  writeFileSync(path.join(dir, 'checkpoints', 'step-0000500.safetensors'), 'big');
  writeFileSync(path.join(dir, '.lock'), '{}');
  writeFileSync(path.join(dir, 'metrics.jsonl.tmp-1'), 'half');
}

describe('study archive', () => {
  it('keeps records, not checkpoints, locks or temporaries', () => {
    expect(['metrics.jsonl', 'samples.png', 'final-eval-1000-cfg2.json', 'evals'].every(isRecord)).toBe(true);
    expect(['checkpoint.safetensors', 'checkpoints', '.lock', 'x.tmp-12'].some(isRecord)).toBe(false);
  });

  it('archives a run, replaces an older copy whole, and restores only where nothing is', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'archive-'));
    const run = path.join(root, 'runs', 'a-seed0'), archive = path.join(root, 'docs-runs');
    fakeRun(run, 'old\n');
    archiveRun(run, archive);
    writeFileSync(path.join(archive, 'a-seed0', 'stale-extra.json'), '{}');
    fakeRun(run, 'new\n');
    const dest = archiveRun(run, archive);
    expect(readdirSync(dest).sort()).toEqual(['done.json', 'evals', 'metrics.jsonl']);
    expect(readFileSync(path.join(dest, 'metrics.jsonl'), 'utf8')).toBe('new\n');
    expect(readdirSync(archive)).toEqual(['a-seed0']);
    // Restored into a fresh --out only when the archive holds it finished.
    const fresh = path.join(root, 'fresh', 'a-seed0');
    expect(restoreRun(fresh, archive, 'not-there.json')).toBe(false);
    expect(existsSync(fresh)).toBe(false);
    expect(restoreRun(fresh, archive, 'done.json')).toBe(true);
    expect(readFileSync(path.join(fresh, 'metrics.jsonl'), 'utf8')).toBe('new\n');
    // A run already in --out (finished or started) is left as it is.
    writeFileSync(path.join(fresh, 'metrics.jsonl'), 'started here\n');
    expect(restoreRun(fresh, archive, 'done.json')).toBe(false);
    expect(readFileSync(path.join(fresh, 'metrics.jsonl'), 'utf8')).toBe('started here\n');
  });
});
