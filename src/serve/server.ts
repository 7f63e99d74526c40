// `diffactor serve`'s HTTP server (node:http, read-only): the page and its assets (uPlot from
// node_modules, page/ beside this file), a JSON API over the runs under the given directories, the
// runs' own files, and server-sent events as metrics.jsonl grows (fs.watch wakes the poll at
// once; a timer polls anyway, for file systems where watching does not work).
// Safety: GET and HEAD only; /files/ serves regular files inside one of the given directories and
// nothing else — the path is decoded, resolved and then resolved again through symlinks, and must
// stay inside the root's real path; a dot-file (.lock) is refused too.
// Not here: reading a run (runs.ts, tail.ts), the actor graph (src/trace/graph.ts), the page (page/).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describeRun, findRuns, runId, type RunInfo } from './runs.ts';
import { MetricsTail } from './tail.ts';
import { parseTraceJsonl } from '../trace/jsonl.ts';
import { actorGraph, type ActorGraph } from '../trace/graph.ts';

export interface ServeOptions {
  dirs: string[];
  port?: number;
  host?: string;
  /** How often the runs are polled for new lines and files, ms (default 1000). */
  pollMs?: number;
}

export interface Served {
  url: string;
  port: number;
  close(): Promise<void>;
}

const PAGE_DIR = fileURLToPath(new URL('./page/', import.meta.url));
const UPLOT_DIR = path.dirname(createRequire(import.meta.url).resolve('uplot'));

/** What /assets/ serves: a fixed list, nothing else. */
const ASSETS: Record<string, string> = {
  'uPlot.iife.min.js': path.join(UPLOT_DIR, 'uPlot.iife.min.js'),
  'uPlot.min.css': path.join(UPLOT_DIR, 'uPlot.min.css'),
  'app.js': path.join(PAGE_DIR, 'app.js'),
  'app.css': path.join(PAGE_DIR, 'app.css'),
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8', '.jsonl': 'text/plain; charset=utf-8', '.yaml': 'text/plain; charset=utf-8',
  '.mmd': 'text/plain; charset=utf-8', '.md': 'text/plain; charset=utf-8', '.txt': 'text/plain; charset=utf-8', '.log': 'text/plain; charset=utf-8',
  '.png': 'image/png', '.svg': 'image/svg+xml',
};

interface Tracked {
  root: number;
  rel: string;
  dir: string;
  tail: MetricsTail;
  info: RunInfo;
  /** The info last sent, to send only changes. */
  sent: string;
  watcher: fs.FSWatcher | null;
  graph: { key: string; value: ActorGraph } | null;
}

/** `/files/<root>/<rest>`: the real path of a regular file inside root `roots[root]`, or null. */
export function resolveServedFile(roots: readonly string[], rootIndex: string, encodedRest: string): string | null {
  if (!/^\d+$/.test(rootIndex)) return null;
  const root = roots[Number(rootIndex)];
  if (root === undefined) return null;
  let rel: string;
  try {
    rel = encodedRest.split('/').map(decodeURIComponent).join('/');
  } catch {
    return null;
  }
  if (rel.includes('\0') || path.isAbsolute(rel)) return null;
  const parts = rel.split(/[\\/]+/).filter(Boolean);
  if (!parts.length || parts.some((p) => p === '..' || p.startsWith('.'))) return null;
  const inside = (p: string) => p.startsWith(root + path.sep);
  const target = path.resolve(root, ...parts);
  if (!inside(target)) return null;
  let real: string;
  try {
    real = fs.realpathSync(target);
    if (!fs.statSync(real).isFile()) return null;
  } catch {
    return null;
  }
  return inside(real) ? real : null;
}

export async function serve(o: ServeOptions): Promise<Served> {
  if (!o.dirs.length) throw new Error('serve: name at least one run directory or study folder');
  const roots = o.dirs.map((d) => {
    if (!fs.existsSync(d)) throw new Error(`serve: ${d} does not exist; pass a run directory (holding metrics.jsonl or spec.yaml) or a folder of runs`);
    if (!fs.statSync(d).isDirectory()) throw new Error(`serve: ${d} is not a directory; pass a run directory or a folder of runs`);
    return fs.realpathSync(d);
  });
  const pollMs = o.pollMs ?? 1000;
  const runs = new Map<string, Tracked>();
  const clients = new Set<http.ServerResponse>();

  const send = (event: string, data: unknown) => {
    const msg = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of clients) c.write(msg);
  };

  const info = (t: Tracked) => describeRun(t.root, t.rel, t.dir, { lines: t.tail.lines, skipped: t.tail.skipped });
  const publicInfo = (i: RunInfo) => ({ ...i, dir: path.join(o.dirs[i.root], i.rel) });

  let wake: NodeJS.Timeout | null = null;
  const soon = () => { wake ??= setTimeout(() => { wake = null; refresh(); }, 30); };

  function refresh(): void {
    const found = findRuns(roots);
    const ids = new Set(found.map((r) => runId(r.root, r.rel)));
    // A run directory that is gone (deleted, moved aside by --fresh) leaves the list.
    for (const [id, t] of runs) {
      if (ids.has(id)) continue;
      t.watcher?.close();
      runs.delete(id);
      send('remove', { id });
    }
    for (const r of found) {
      const id = runId(r.root, r.rel);
      let t = runs.get(id);
      if (!t) {
        t = { ...r, tail: new MetricsTail(path.join(r.dir, 'metrics.jsonl')), info: null as unknown as RunInfo, sent: '', watcher: null, graph: null };
        try {
          t.watcher = fs.watch(r.dir, () => soon());
          t.watcher.on('error', () => { t!.watcher?.close(); t!.watcher = null; });
        } catch {
          t.watcher = null; // the timer still polls
        }
        runs.set(id, t);
        t.tail.poll();
        t.info = info(t);
        t.sent = JSON.stringify(t.info);
        send('run', publicInfo(t.info));
        continue;
      }
      const p = t.tail.poll();
      if (p.reset) send('reset', { id, lines: p.lines });
      else if (p.lines.length) send('metrics', { id, lines: p.lines });
      t.info = info(t);
      const s = JSON.stringify(t.info);
      if (s !== t.sent) {
        t.sent = s;
        send('run', publicInfo(t.info));
      }
    }
  }

  const rootWatchers = roots.flatMap((r) => {
    try {
      const w = fs.watch(r, () => soon());
      w.on('error', () => w.close());
      return [w];
    } catch {
      return [];
    }
  });
  refresh();
  const timer = setInterval(refresh, pollMs);
  const heartbeat = setInterval(() => { for (const c of clients) c.write(': keep-alive\n\n'); }, 15_000);

  function graphOf(t: Tracked): ActorGraph | null {
    const file = path.join(t.dir, 'trace.jsonl');
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      return null;
    }
    const key = `${st.size}:${st.mtimeMs}`;
    if (t.graph?.key !== key) {
      // A trace still being written may end in a torn line: read up to the last newline.
      const text = fs.readFileSync(file, 'utf8');
      t.graph = { key, value: actorGraph(parseTraceJsonl(text.slice(0, text.lastIndexOf('\n') + 1), file)) };
    }
    return t.graph.value;
  }

  function json(res: http.ServerResponse, status: number, body: unknown): void {
    const data = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(data);
  }

  function file(req: http.IncomingMessage, res: http.ServerResponse, f: string, download?: string, runFile = false): void {
    const st = fs.statSync(f);
    res.writeHead(200, {
      // A run's own files are data: an HTML or SVG file among them must not run scripts on this origin.
      ...(runFile && { 'Content-Security-Policy': 'sandbox; default-src \'none\'; img-src \'self\'; style-src \'unsafe-inline\'' }),
      'Content-Type': TYPES[path.extname(f).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': st.size,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      ...(download && { 'Content-Disposition': `attachment; filename="${download.replace(/[^\w.-]/g, '_')}"` }),
    });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(f).pipe(res);
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      res.end('read-only: GET and HEAD only\n');
      return;
    }
    // The raw path, not a normalised URL: /files/ decodes and checks it itself.
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const pathname = q < 0 ? raw : raw.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    const run = () => {
      const t = runs.get(params.get('run') ?? '');
      if (!t) json(res, 404, { error: `no run '${params.get('run')}' (see /api/runs)` });
      return t;
    };
    if (pathname === '/' || pathname === '/index.html') return file(req, res, path.join(PAGE_DIR, 'index.html'));
    if (pathname.startsWith('/assets/')) {
      const a = ASSETS[pathname.slice('/assets/'.length)];
      if (!a) return json(res, 404, { error: 'no such asset' });
      return file(req, res, a);
    }
    if (pathname === '/api/runs') return json(res, 200, [...runs.values()].map((t) => publicInfo(t.info)));
    if (pathname === '/api/metrics') {
      const t = run();
      if (t) json(res, 200, { id: runId(t.root, t.rel), lines: t.tail.lines, skipped: t.tail.skipped });
      return;
    }
    if (pathname === '/api/graph') {
      const t = run();
      if (!t) return;
      try {
        const g = graphOf(t);
        return g ? json(res, 200, g) : json(res, 404, { error: `${t.dir} has no trace.jsonl: train with --trace to record one` });
      } catch (e) {
        return json(res, 422, { error: (e as Error).message });
      }
    }
    if (pathname === '/api/events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
      res.write('retry: 1000\n\n');
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    const m = /^\/files\/([^/]+)\/(.+)$/.exec(pathname);
    if (m) {
      const f = resolveServedFile(roots, m[1], m[2]);
      if (!f) return json(res, 404, { error: 'not a file under the served directories' });
      return file(req, res, f, params.has('download') ? path.basename(f) : undefined, true);
    }
    json(res, 404, { error: 'not found' });
  }

  const server = http.createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      if (!res.headersSent) json(res, 500, { error: (e as Error).message });
      else res.end();
    }
  });
  const host = o.host ?? '127.0.0.1';
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port ?? 0, host, () => resolve());
    });
  } catch (e) {
    clearInterval(timer);
    clearInterval(heartbeat);
    for (const w of rootWatchers) w.close();
    for (const t of runs.values()) t.watcher?.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new Error(`serve: port ${o.port} on ${host} is in use; pass another --port (0: any free port)`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new Error(`serve: --host ${host} is not an address of this machine`);
    throw e;
  }
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    port,
    async close() {
      clearInterval(timer);
      clearInterval(heartbeat);
      if (wake) clearTimeout(wake);
      for (const w of rootWatchers) w.close();
      for (const t of runs.values()) t.watcher?.close();
      for (const c of clients) c.end();
      clients.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
