// diffactor serve's server without a browser: raw requests that try to leave the served
// directories are refused (encoded and plain `..`, a symlink out, a dot-file, an unknown root),
// it is read-only (GET/HEAD only), bad and half-written metrics lines are skipped and counted, a
// file being appended to is followed line by line, the runs list says running/finished/failed/
// stopped, and the actor graph is the trace's (one node per actor, the edge counts and bytes).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import http from 'node:http';
import { appendFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serve, type Served } from '../../src/serve/server.ts';
import { MetricsTail } from '../../src/serve/tail.ts';
import { findRuns, parseMetrics } from '../../src/serve/runs.ts';
import { actorGraph } from '../../src/trace/graph.ts';
import { LOCK_FILE } from '../../src/io/lock.ts';
import { syntheticTrace, trainLine, writeRun, type FixtureRun } from './fixtures.ts';

/** A request whose path goes on the wire exactly as written (no URL normalisation). */
function raw(port: number, p: string, method = 'GET'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

let root: string, outside: string, s: Served, run: FixtureRun;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'serve-'));
  outside = mkdtempSync(path.join(tmpdir(), 'serve-outside-'));
  writeFileSync(path.join(outside, 'secret.txt'), 'SECRET');
  const study = path.join(root, 'study');
  run = writeRun(path.join(study, 'a-seed0'), { name: 'a-seed0', trained: 20, bad: true });
  writeRun(path.join(study, 'b-seed0'), { name: 'b-seed0', trained: 12, steps: 40, failed: 'training diverged at step 12 in student.forward: loss became NaN', finished: false });
  writeRun(path.join(study, 'c-seed0'), { name: 'c-seed0', trained: 12, steps: 40 });
  const live = writeRun(path.join(study, 'd-seed0'), { name: 'd-seed0', trained: 12, steps: 40, finished: false });
  writeFileSync(path.join(live.dir, LOCK_FILE), JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), started: '', command: 'test' }));
  symlinkSync(path.join(outside, 'secret.txt'), path.join(run.dir, 'link.txt'));
  s = await serve({ dirs: [study], port: 0, pollMs: 100 });
});

afterAll(async () => {
  await s?.close();
});

describe('safety', () => {
  it('refuses every way out of the served directory', async () => {
    for (const p of [
      '/files/0/..%2f..%2fetc/passwd',
      '/files/0/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd',
      '/files/0/../../etc/passwd',
      '/files/0/%2e%2e/%2e%2e/etc/passwd',
      '/files/0/a-seed0/..%2f..%2f..%2fetc/passwd',
      `/files/0/${encodeURIComponent(path.join(outside, 'secret.txt'))}`,
      '/files/0/a-seed0/link.txt',
      '/files/0/a-seed0/%00spec.yaml',
      `/files/0/d-seed0/${LOCK_FILE}`,
      '/files/1/spec.yaml',
      '/files/x/spec.yaml',
      '/files/0/a-seed0',
      '/assets/../../package.json',
      '/assets/..%2f..%2fpackage.json',
    ]) {
      const r = await raw(s.port, p);
      expect(r.status, p).toBe(404);
      expect(r.body, p).not.toMatch(/root:|SECRET|"name": "diffactor"/);
    }
    const ok = await raw(s.port, '/files/0/a-seed0/spec.yaml');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatch(/name: a-seed0/);
  });

  it('is read-only: only GET and HEAD', async () => {
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const r = await raw(s.port, '/files/0/a-seed0/spec.yaml', m);
      expect(r.status, m).toBe(405);
    }
    // A run's files are served sandboxed: a document among them runs no script here.
    expect((await raw(s.port, '/files/0/a-seed0/spec.yaml')).headers['content-security-policy']).toMatch(/^sandbox/);
    const h = await raw(s.port, '/files/0/a-seed0/trace.json?download=1', 'HEAD');
    expect(h.status).toBe(200);
    expect(h.headers['content-disposition']).toBe('attachment; filename="trace.json"');
  });
});

describe('metrics', () => {
  it('skips a damaged line and holds back a torn last one', async () => {
    const r = JSON.parse((await raw(s.port, `/api/metrics?run=${encodeURIComponent('0/a-seed0')}`)).body);
    expect(r.lines.filter((l: { eval?: boolean }) => !l.eval)).toHaveLength(run.trainLines);
    expect(r.lines.filter((l: { eval?: boolean }) => l.eval)).toHaveLength(run.evalLines);
    expect(r.skipped).toBe(1);
  });

  it('a tail returns each line once, whole, however the appends are cut', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 60 }), { maxLength: 20 }), (steps, cuts) => {
      const dir = mkdtempSync(path.join(tmpdir(), 'tail-'));
      const file = path.join(dir, 'metrics.jsonl');
      const text = steps.map((st) => `${JSON.stringify(trainLine(st))}\n`).join('') + 'not json\n';
      const tail = new MetricsTail(file);
      expect(tail.poll().lines).toEqual([]); // no file yet
      writeFileSync(file, '');
      const seen: unknown[] = [];
      let at = 0;
      for (const c of [...cuts, text.length]) {
        const to = Math.min(text.length, at + c);
        appendFileSync(file, text.slice(at, to));
        at = to;
        const p = tail.poll();
        expect(p.reset).toBe(false);
        seen.push(...p.lines);
        if (at === text.length) break;
      }
      expect(seen).toEqual(parseMetrics(text).lines);
      expect(tail.skipped).toBe(1);
      // A shorter file (a resume truncated it) is read again from the start.
      writeFileSync(file, `${JSON.stringify(trainLine(1))}\n`);
      const p = tail.poll();
      expect(p.reset).toBe(true);
      expect(p.lines).toEqual([trainLine(1)]);
      // Rewritten in place (same inode) and longer than before (RunLog.clear, then new lines).
      const longer = [2, 3, ...steps, ...steps].map((st) => `${JSON.stringify(trainLine(st, 2))}\n`).join('');
      writeFileSync(file, longer);
      const q = tail.poll();
      expect(q.reset).toBe(true);
      expect(q.lines).toEqual(parseMetrics(longer).lines);
      expect(tail.poll()).toEqual({ reset: false, lines: [] });
    }), { numRuns: 40 });
  });

  it('sends appended lines as server-sent events', async () => {
    const got = new Promise<string>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: s.port, path: '/api/events' }, (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          buf += d;
          const m = /event: metrics\ndata: (.*)\n\n/.exec(buf);
          if (m) { req.destroy(); resolve(m[1]); }
        });
      });
      req.on('error', (e) => { if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(e); });
    });
    await new Promise((r) => setTimeout(r, 150));
    appendFileSync(path.join(root, 'study', 'c-seed0', 'metrics.jsonl'), `${JSON.stringify(trainLine(13))}\n`);
    const ev = JSON.parse(await got);
    expect(ev.id).toBe('0/c-seed0');
    expect(ev.lines).toEqual([trainLine(13)]);
  });
});

describe('runs', () => {
  it('lists the study with each status, step, elapsed time and the reason of a failure', async () => {
    const runs = JSON.parse((await raw(s.port, '/api/runs')).body) as { name: string; status: string; reason: string | null; step: number; totalSteps: number; elapsedS: number; etaS: number | null; group: string; protocol: string }[];
    const by = Object.fromEntries(runs.map((r) => [r.name, r]));
    expect(Object.keys(by).sort()).toEqual(['a-seed0', 'b-seed0', 'c-seed0', 'd-seed0']);
    expect(by['a-seed0']).toMatchObject({ status: 'finished', step: 20, totalSteps: 20, elapsedS: 10, group: 'a', protocol: 'repa' });
    expect(by['b-seed0']).toMatchObject({ status: 'failed', reason: 'training diverged at step 12 in student.forward: loss became NaN' });
    expect(by['c-seed0'].status).toBe('stopped');
    expect(by['c-seed0'].reason).toMatch(/--resume/);
    // Locked by a live process (this one): running, ETA = remaining steps / it_s.
    expect(by['d-seed0']).toMatchObject({ status: 'running', step: 12 });
    expect(by['d-seed0'].etaS).toBeCloseTo((40 - 12) / 2, 9);
  });

  it('the actor graph: one node per actor, one edge per sender, receiver and message type', async () => {
    const g = JSON.parse((await raw(s.port, `/api/graph?run=${encodeURIComponent('0/a-seed0')}`)).body);
    expect(g.nodes.map((n: { actor: string }) => n.actor).sort()).toEqual(['coordinator', 'data', 'evaluator', 'student', 'teacher']);
    expect(g).toEqual(JSON.parse(JSON.stringify(actorGraph(run.events))));
    const fwd = g.edges.find((e: { type: string }) => e.type === 'forward');
    expect(fwd).toEqual({ from: 'coordinator', to: 'student', type: 'forward', count: 4, bytes: 4 * 256, replyBytes: 4 * 512, errors: 0 });
  });
});

describe('findRuns', () => {
  it('finds runs and the runs of study folders below a root, not inside a run', () => {
    const r = mkdtempSync(path.join(tmpdir(), 'serve-find-'));
    writeRun(path.join(r, 'repa'), { name: 'repa', trained: 2, trace: false });
    writeRun(path.join(r, 'compare', 'x-seed0'), { name: 'x-seed0', trained: 2, trace: false });
    writeRun(path.join(r, 'compare', 'x-seed1'), { name: 'x-seed1', trained: 2, trace: false });
    mkdirSync(path.join(r, 'compare', 'docs', 'img'), { recursive: true });
    writeRun(path.join(r, 'repa', 'checkpoints', 'inner'), { name: 'inner', trained: 1, trace: false }); // inside a run: not a run of its own
    writeRun(path.join(r, '.hidden', 'h'), { name: 'h', trained: 1, trace: false });
    writeRun(path.join(r, 'a', 'b', 'c', 'too-deep'), { name: 'deep', trained: 1, trace: false });
    expect(findRuns([r]).map((x) => x.rel)).toEqual(['compare/x-seed0', 'compare/x-seed1', 'repa']);
    expect(findRuns([path.join(r, 'repa')]).map((x) => [x.root, x.rel])).toEqual([[0, '']]);
  });
});

describe('actorGraph', () => {
  it('edge counts add up to the requests and their bytes; nodes are the summary\'s actors', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 6 }), (steps) => {
      const ev = syntheticTrace(steps);
      const g = actorGraph(ev);
      const reqs = ev.filter((e) => e.kind === 'request');
      expect(g.edges.reduce((a, e) => a + e.count, 0)).toBe(reqs.length);
      expect(g.edges.reduce((a, e) => a + e.bytes, 0)).toBe(reqs.reduce((a, e) => a + e.bytes, 0));
      expect(g.edges.reduce((a, e) => a + e.replyBytes, 0)).toBe(ev.filter((e) => e.kind !== 'request').reduce((a, e) => a + e.bytes, 0));
      expect(g.nodes).toHaveLength(5);
      // busy: the replies' finished − started per handler.
      const student = g.nodes.find((n) => n.actor === 'student')!;
      expect(student.busyMs).toBe(10 * steps);
    }));
  });
});

it('a port in use and a foreign address are named', async () => {
  await expect(serve({ dirs: [root], port: s.port })).rejects.toThrow(new RegExp(`serve: port ${s.port} on 127.0.0.1 is in use; pass another --port`));
  await expect(serve({ dirs: [root], port: 0, host: '203.0.113.7' })).rejects.toThrow(/serve: --host 203\.0\.113\.7 is not an address of this machine/);
});

it('a directory that is not there is refused with its name', async () => {
  await expect(serve({ dirs: [path.join(root, 'nope')], port: 0 })).rejects.toThrow(/serve: .*nope does not exist/);
  mkdirSync(path.join(root, 'empty'));
  const e = await serve({ dirs: [path.join(root, 'empty')], port: 0 });
  expect(JSON.parse((await raw(e.port, '/api/runs')).body)).toEqual([]);
  await e.close();
});
