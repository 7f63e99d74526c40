// `diffactor serve` from the command line: prints the URL it listens on (127.0.0.1 by default),
// serves the directories it was given, stops on SIGTERM; a bad --port or a missing directory is
// one clear message naming it.
import { expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeRun } from './fixtures.ts';

const bin = path.resolve(import.meta.dirname, '../../bin/diffactor.js');

it('prints the URL and serves the run until SIGTERM', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'serve-cli-'));
  writeRun(path.join(root, 'r'), { name: 'cli-run', trained: 4, trace: false });
  const child = spawn(process.execPath, [bin, 'serve', root, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => { out += d; const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out); if (m) resolve(m[1]); });
      child.on('exit', (c) => reject(new Error(`serve exited with ${c}`)));
    });
    const runs = await (await fetch(`${url}api/runs`)).json() as { name: string; status: string }[];
    expect(runs.map((r) => [r.name, r.status])).toEqual([['cli-run', 'finished']]);
    expect((await fetch(url)).headers.get('content-type')).toMatch(/text\/html/);
    expect((await fetch(`${url}assets/uPlot.iife.min.js`)).status).toBe(200);
  } finally {
    child.kill('SIGTERM');
  }
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  expect(code).toBe(0);
}, 30_000);

it('names a bad port and a missing directory', () => {
  const bad = spawnSync(process.execPath, [bin, 'serve', '--port', '70000'], { encoding: 'utf8' });
  expect(bad.status).not.toBe(0);
  expect(bad.stderr).toMatch(/--port <n>.*70000.*port number in \[0, 65535\]/);
  const missing = spawnSync(process.execPath, [bin, 'serve', '/no/such/dir', '--port', '0'], { encoding: 'utf8' });
  expect(missing.status).toBe(1);
  expect(missing.stderr).toMatch(/serve: \/no\/such\/dir does not exist/);
}, 30_000);
