// diffactor serve: the page's script (plain browser JavaScript, no build step). It reads the
// server's JSON API (/api/runs, /api/metrics, /api/graph), follows /api/events (server-sent
// events: a run's new metrics lines, a changed status, new evaluation grids) and draws with uPlot
// (window.uPlot, served from node_modules). window.dashboard exposes the state for the browser tests.
'use strict';
(() => {
  const META = new Set(['step', 'eval', 'wall_s', 'it_s']);
  const COLORS = ['#1d4ed8', '#dc2626', '#15803d', '#9333ea', '#ea580c', '#0891b2', '#be185d', '#4d7c0f', '#6b7280', '#a16207'];
  const state = { runs: new Map(), lines: new Map(), checked: new Set(), focus: null, charts: new Map(), graphFor: null, graphAt: 0, ready: false, pending: [] };
  window.dashboard = state;

  const $ = (s) => document.querySelector(s);
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  };
  const svgEl = (tag, attrs = {}) => {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  };
  const fmtS = (s) => (s == null ? '–' : s < 60 ? `${s.toFixed(0)} s` : s < 3600 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`);
  const fmtB = (b) => { const u = ['B', 'KiB', 'MiB', 'GiB']; let i = 0; while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; } return i ? `${b.toFixed(1)} ${u[i]}` : `${b} B`; };
  const fmtMs = (ms) => (ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`);
  const fileUrl = (run, name) => `/files/${run.root}/${run.rel ? `${run.rel.split('/').map(encodeURIComponent).join('/')}/` : ''}${name.split('/').map(encodeURIComponent).join('/')}`;
  /** Axis ticks: a few significant digits, exponents for small or large numbers (learning rates). */
  const tick = (v) => (v == null ? '' : v === 0 ? '0' : Math.abs(v) < 1e-2 || Math.abs(v) >= 1e5 ? v.toExponential(1) : String(+v.toPrecision(4)));
  const getJson = async (url) => { const r = await fetch(url); if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || `${url}: ${r.status}`); return r.json(); };
  const getText = async (url) => { const r = await fetch(url); return r.ok ? r.text() : null; };

  // ------------------------------------------------------------------ metrics lines
  const lineKey = (l) => `${l.eval ? 'e' : 't'}${l.step}`;
  function addLines(id, lines, reset) {
    let have = state.lines.get(id);
    if (!have || reset) state.lines.set(id, have = { all: [], keys: new Set() });
    for (const l of lines) {
      const k = lineKey(l);
      if (have.keys.has(k)) continue; // already read (the first fetch and the events overlap)
      have.keys.add(k);
      have.all.push(l);
    }
  }
  const trainLines = (id) => (state.lines.get(id)?.all ?? []).filter((l) => !l.eval);
  const evalLines = (id) => (state.lines.get(id)?.all ?? []).filter((l) => l.eval);
  const numericKeys = (lines) => { const s = new Set(); for (const l of lines) for (const [k, v] of Object.entries(l)) if (!META.has(k) && typeof v === 'number') s.add(k); return [...s]; };

  // ------------------------------------------------------------------ runs list
  function renderRuns() {
    const body = $('#runs tbody');
    body.replaceChildren();
    for (const r of state.runs.values()) {
      const box = el('input', { type: 'checkbox', onchange: (e) => { e.target.checked ? state.checked.add(r.id) : state.checked.delete(r.id); renderCharts(); } });
      box.checked = state.checked.has(r.id);
      const name = el('a', { onclick: () => setFocus(r.id), title: r.dir }, r.name);
      // Where it is, when the directory is not simply named after the run (a study's sub-folder, a run moved aside).
      const where = r.rel && r.rel !== r.name ? el('span', { class: 'reason' }, ` ${r.rel}`) : '';
      const status = el('td', {}, el('span', { class: `status-${r.status}` }, r.status));
      if (r.reason) status.append(' ', el('span', { class: 'reason' }, r.reason));
      if (r.skipped) status.append(' ', el('span', { class: 'reason' }, `(${r.skipped} bad metrics line${r.skipped > 1 ? 's' : ''} skipped)`));
      const tr = el('tr', { 'data-run': r.id, class: r.id === state.focus ? 'focused' : '' },
        el('td', {}, box), el('td', {}, name, where), el('td', {}, r.protocol ?? '–'), status,
        el('td', { class: 'num' }, `${r.step}${r.totalSteps ? ` / ${r.totalSteps}` : ''}`),
        el('td', { class: 'num' }, fmtS(r.elapsedS)), el('td', { class: 'num' }, r.status === 'running' ? fmtS(r.etaS) : '–'),
        el('td', { class: 'num' }, String(r.evalSteps.length)));
      body.append(tr);
    }
  }

  // ------------------------------------------------------------------ curves
  /** The charts to draw: one per metric; with one run ticked, loss and its terms share a chart. */
  function chartSpecs() {
    const ids = [...state.checked].filter((id) => state.runs.has(id));
    const tKeys = [...new Set(ids.flatMap((id) => numericKeys(trainLines(id))))];
    const eKeys = [...new Set(ids.flatMap((id) => numericKeys(evalLines(id))))];
    const grads = tKeys.filter((k) => k.startsWith('grad_norm'));
    const terms = tKeys.filter((k) => k !== 'loss' && k !== 'lr' && !k.startsWith('grad_norm'));
    const single = ids.length === 1;
    const out = [];
    if (tKeys.includes('loss')) out.push({ key: 'loss', title: single && terms.length ? 'loss and its terms' : 'loss', kind: 'train', fields: single ? ['loss', ...terms] : ['loss'] });
    if (!single) for (const k of terms) out.push({ key: k, title: `loss term ${k}`, kind: 'train', fields: [k] });
    for (const k of grads) out.push({ key: k, title: k.replace('_', ' '), kind: 'train', fields: [k] });
    if (tKeys.includes('lr')) out.push({ key: 'lr', title: 'learning rate', kind: 'train', fields: ['lr'] });
    for (const k of eKeys) out.push({ key: `eval:${k}`, title: `${k} (evaluation)`, kind: 'eval', fields: [k] });
    return { ids, out };
  }

  /** uPlot data and series for one chart: runs alone, or groups of seeds as mean and min–max band. */
  function chartData(spec, ids) {
    const linesOf = spec.kind === 'eval' ? evalLines : trainLines;
    const single = ids.length === 1;
    // Runs without a value for this chart (no evaluation yet, another method's term) are left out.
    ids = ids.filter((id) => linesOf(id).some((l) => spec.fields.some((f) => typeof l[f] === 'number')));
    const groups = new Map();
    for (const id of ids) {
      const g = single ? id : state.runs.get(id).group;
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(id);
    }
    const steps = [...new Set(ids.flatMap((id) => linesOf(id).map((l) => l.step)))].sort((a, b) => a - b);
    const at = new Map(steps.map((s, i) => [s, i]));
    const column = (id, field) => { const c = new Array(steps.length).fill(null); for (const l of linesOf(id)) if (typeof l[field] === 'number') c[at.get(l.step)] = l[field]; return c; };
    const series = [{ label: 'step' }], data = [steps], bands = [];
    let color = 0;
    for (const [g, members] of groups) {
      for (const field of spec.fields) {
        const stroke = COLORS[color++ % COLORS.length];
        const name = single ? field : members.length === 1 ? state.runs.get(members[0]).name : g;
        const label = spec.fields.length > 1 && !single ? `${name} ${field}` : name;
        if (members.length === 1) {
          series.push({ label, stroke, width: 1.5, spanGaps: true });
          data.push(column(members[0], field));
          continue;
        }
        const cols = members.map((id) => column(id, field));
        const stat = (f) => steps.map((_, i) => { const v = cols.map((c) => c[i]).filter((x) => x != null); return v.length ? f(v) : null; });
        const hi = stat((v) => Math.max(...v)), lo = stat((v) => Math.min(...v)), mean = stat((v) => v.reduce((a, b) => a + b, 0) / v.length);
        series.push({ label: `${label} mean of ${members.length} seeds`, stroke, width: 2, spanGaps: true });
        data.push(mean);
        series.push({ label: `${label} max`, stroke: `${stroke}55`, width: 0.5, spanGaps: true });
        data.push(hi);
        series.push({ label: `${label} min`, stroke: `${stroke}55`, width: 0.5, spanGaps: true });
        data.push(lo);
        bands.push({ series: [series.length - 2, series.length - 1], fill: `${stroke}22` });
      }
    }
    const points = steps.filter((_, i) => data.slice(1).some((c) => c[i] != null)).length;
    return { series, data, bands, points };
  }

  function renderCharts() {
    const { ids, out } = chartSpecs();
    const box = $('#charts');
    const keep = new Set(out.map((s) => s.key));
    for (const [k, c] of state.charts) if (!keep.has(k)) { c.plot.destroy(); c.div.remove(); state.charts.delete(k); }
    for (const spec of out) {
      const d = chartData(spec, ids);
      const sig = d.series.map((s) => s.label).join('|');
      let c = state.charts.get(spec.key);
      if (c && c.sig !== sig) { c.plot.destroy(); c.div.remove(); state.charts.delete(spec.key); c = null; }
      if (!c) {
        const div = el('div', { class: 'chart', 'data-key': spec.key }, el('h4', {}, spec.title));
        box.append(div);
        const plot = new uPlot({
          width: 440, height: 220, series: d.series, bands: d.bands,
          scales: { x: { time: false } }, axes: [{ label: 'step' }, { size: 60, values: (u, vals) => vals.map(tick) }], legend: { live: true },
          points: { show: d.data[0].length < 60 },
        }, d.data, div);
        c = { div, plot, sig };
        state.charts.set(spec.key, c);
      } else {
        c.plot.setData(d.data);
      }
      c.div.setAttribute('data-points', String(d.points));
    }
    // Keep the DOM order that of the specs.
    for (const spec of out) box.append(state.charts.get(spec.key).div);
  }

  let chartTimer = null;
  const chartsSoon = () => { chartTimer ??= setTimeout(() => { chartTimer = null; renderCharts(); }, 100); };

  // ------------------------------------------------------------------ the focused run
  async function setFocus(id) {
    state.focus = id;
    const r = state.runs.get(id);
    renderRuns();
    $('#focus-name').textContent = r ? `${r.name} (${r.dir})` : '';
    if (!r) return;
    const links = $('#links');
    links.replaceChildren();
    const link = (name, text, download) => links.append(el('a', { href: fileUrl(r, name) + (download ? '?download=1' : ''), ...(download && { download: name }) }, text));
    link('metrics.jsonl', 'metrics.jsonl');
    link('spec.yaml', 'spec.yaml');
    if (r.traceJson) link('trace.json', 'download trace.json (Perfetto)', true);
    else links.append(el('span', { class: 'muted' }, r.trace ? 'trace.json is written when the run ends' : 'no trace (train with --trace)'));
    renderGrids(true);
    $('#spec').textContent = (await getText(fileUrl(r, 'spec.yaml'))) ?? 'no spec.yaml';
    $('#inputs').textContent = r.inputs ? (await getText(fileUrl(r, 'inputs.json'))) : 'no inputs.json in this run directory';
    const mmd = r.stepDiagram ? await getText(fileUrl(r, r.stepDiagram)) : null;
    $('#stepdiagram').textContent = mmd ?? 'no step diagram (train with --trace)';
    drawSequence($('#sequence'), mmd);
    await renderGraph(true);
  }

  function gridEntries(r) {
    return [...r.grids.map((g) => ({ label: `evaluation at step ${g.step}`, url: fileUrl(r, g.file) })), ...(r.samples ? [{ label: 'final samples.png', url: fileUrl(r, 'samples.png') }] : [])];
  }

  function renderGrids(reset) {
    const r = state.runs.get(state.focus);
    if (!r) return;
    const s = $('#grid-slider'), entries = gridEntries(r);
    const atEnd = Number(s.value) >= Number(s.max);
    s.max = String(Math.max(0, entries.length - 1));
    if (reset || atEnd) s.value = s.max;
    s.disabled = entries.length < 2;
    const show = () => {
      const e = entries[Number(s.value)];
      $('#grid-label').textContent = e ? `${e.label} (${Number(s.value) + 1} of ${entries.length})` : 'no sample grids yet';
      const img = $('#grid-img');
      if (e) { if (img.getAttribute('src') !== e.url) img.src = e.url; img.hidden = false; } else img.hidden = true;
    };
    s.oninput = show;
    show();
  }

  async function renderGraph(force) {
    const r = state.runs.get(state.focus);
    if (!r) return;
    // A running trace grows: redraw at most every 5 s.
    if (!force && Date.now() - state.graphAt < 5000) return;
    state.graphAt = Date.now();
    const box = $('#graph'), edges = $('#edges tbody');
    if (!r.trace) { box.replaceChildren(el('p', { class: 'muted' }, 'no trace.jsonl: train with --trace to see the actors and their messages')); edges.replaceChildren(); return; }
    let g;
    try { g = await getJson(`/api/graph?run=${encodeURIComponent(r.id)}`); } catch (e) { box.replaceChildren(el('p', { class: 'muted' }, e.message)); return; }
    if (state.focus !== r.id) return;
    drawGraph(box, g);
    edges.replaceChildren(...g.edges.map((e) => el('tr', {}, el('td', {}, e.from), el('td', {}, e.to), el('td', {}, e.type + (e.errors ? ` (${e.errors} errors)` : '')),
      el('td', { class: 'num' }, String(e.count)), el('td', { class: 'num' }, fmtB(e.bytes)), el('td', { class: 'num' }, fmtB(e.replyBytes)))));
  }

  /** Actors on a circle (the coordinator in the middle), one arrow per sender → receiver pair. */
  function drawGraph(box, g) {
    const W = 760, H = 540, cx = W / 2, cy = H / 2, R = 215, r = 30;
    const ring = g.nodes.filter((n) => n.actor !== 'coordinator');
    const pos = new Map();
    ring.forEach((n, i) => { const a = -Math.PI / 2 + (2 * Math.PI * i) / ring.length; pos.set(n.actor, [cx + R * Math.cos(a), cy + R * Math.sin(a)]); });
    if (g.nodes.some((n) => n.actor === 'coordinator')) pos.set('coordinator', [cx, cy]);
    const svg = svgEl('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}` });
    const defs = svgEl('defs');
    const marker = svgEl('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' });
    marker.append(svgEl('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#888' }));
    defs.append(marker);
    svg.append(defs);
    const pairs = new Map();
    for (const e of g.edges) { const k = `${e.from}\u0000${e.to}`; if (!pairs.has(k)) pairs.set(k, []); pairs.get(k).push(e); }
    for (const [k, es] of pairs) {
      const [from, to] = k.split('\u0000');
      const a = pos.get(from), b = pos.get(to);
      if (!a || !b || from === to) continue;
      const dx = b[0] - a[0], dy = b[1] - a[1], len = Math.hypot(dx, dy) || 1, ux = dx / len, uy = dy / len;
      const bend = 18; // a curve, so that a → b and b → a do not overlap
      const mx = (a[0] + b[0]) / 2 - uy * bend, my = (a[1] + b[1]) / 2 + ux * bend;
      const p = svgEl('g', { class: 'edge', 'data-from': from, 'data-to': to });
      p.append(svgEl('path', { d: `M ${a[0] + ux * r} ${a[1] + uy * r} Q ${mx} ${my} ${b[0] - ux * r} ${b[1] - uy * r}`, 'marker-end': 'url(#arrow)' }));
      const total = es.reduce((s, e) => s + e.count, 0), bytes = es.reduce((s, e) => s + e.bytes, 0);
      const t = svgEl('text', { x: mx, y: my });
      t.textContent = `${es.length > 2 ? `${es.slice(0, 2).map((e) => e.type).join(', ')}, …` : es.map((e) => e.type).join(', ')} ×${total} (${fmtB(bytes)})`;
      const title = svgEl('title');
      title.textContent = es.map((e) => `${e.type}: ${e.count} × (${fmtB(e.bytes)} sent, ${fmtB(e.replyBytes)} back)`).join('\n');
      p.append(t, title);
      svg.append(p);
    }
    for (const n of g.nodes) {
      const [x, y] = pos.get(n.actor);
      const busy = n.busyMs + n.idleMs > 0 ? n.busyMs / (n.busyMs + n.idleMs) : 0;
      const node = svgEl('g', { class: 'actor-node', 'data-actor': n.actor });
      node.append(svgEl('circle', { cx: x, cy: y, r, fill: `hsl(28, 90%, ${92 - 45 * busy}%)` }));
      const name = svgEl('text', { x, y: y + 4 });
      name.textContent = n.actor;
      const stats = svgEl('text', { x, y: y + r + 14 });
      // The coordinator routes messages and handles none: it has no busy time to show.
      stats.textContent = n.actor === 'coordinator' ? '' : `busy ${fmtMs(n.busyMs)} · idle ${fmtMs(n.idleMs)}`;
      const title = svgEl('title');
      title.textContent = `${n.actor}: ${n.received} received, ${n.sent} sent; tensors in ${fmtB(n.tensorBytesIn)}, out ${fmtB(n.tensorBytesOut)}; busy ${fmtMs(n.busyMs)} (${(100 * busy).toFixed(0)} %), idle ${fmtMs(n.idleMs)}`;
      node.append(name, stats, title);
      svg.append(node);
    }
    box.replaceChildren(svg);
  }

  /**
   * The step diagram (step-<n>.mmd, written by src/trace/mermaid.ts) drawn as a sequence diagram:
   * one lifeline per participant, one arrow per message in order (requests solid, replies dashed,
   * errors red), notes in italics. Only the lines that file holds are read.
   */
  function drawSequence(box, text) {
    box.replaceChildren();
    if (!text) return;
    const names = [], alias = new Map(), rows = [];
    for (const line of text.split('\n')) {
      let m;
      if ((m = /^\s*participant (\S+)(?: as (.+))?$/.exec(line))) { names.push(m[1]); alias.set(m[1], m[2] ?? m[1]); }
      else if ((m = /^\s*(\S+?)(-->>|->>|--x)(\S+?): (.*)$/.exec(line))) rows.push({ from: m[1], to: m[3], kind: m[2], label: m[4] });
      else if ((m = /^\s*Note over (\S+): (.*)$/.exec(line))) rows.push({ from: m[1], to: m[1], kind: 'note', label: m[2] });
    }
    const colW = 150, rowH = 24, top = 30, W = names.length * colW, H = top + rows.length * rowH + 20;
    const x = (n) => names.indexOf(n) * colW + colW / 2;
    const svg = svgEl('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'sequence' });
    const defs = svgEl('defs');
    for (const [id, color] of [['seq-arrow', '#333'], ['seq-error', '#b91c1c']]) {
      const mk = svgEl('marker', { id, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
      mk.append(svgEl('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: color }));
      defs.append(mk);
    }
    svg.append(defs);
    for (const n of names) {
      const t = svgEl('text', { x: x(n), y: 18, class: 'participant' });
      t.textContent = alias.get(n);
      svg.append(t, svgEl('line', { x1: x(n), y1: top - 6, x2: x(n), y2: H - 6, class: 'lifeline' }));
    }
    rows.forEach((r, i) => {
      const y = top + i * rowH + 16;
      const g = svgEl('g', { class: `msg ${r.kind === '->>' ? 'request' : r.kind === '-->>' ? 'reply' : r.kind === '--x' ? 'error' : 'note'}` });
      const label = svgEl('text', { y: y - 4 });
      label.textContent = r.label;
      if (r.kind === 'note' || !names.includes(r.from) || !names.includes(r.to)) {
        label.setAttribute('x', String((names.includes(r.from) ? x(r.from) : 0) + 6));
        g.append(label);
      } else {
        const a = x(r.from), b = x(r.to), dir = Math.sign(b - a) || 1;
        g.append(svgEl('line', { x1: a, y1: y, x2: b - dir * 2, y2: y, 'marker-end': `url(#${r.kind === '--x' ? 'seq-error' : 'seq-arrow'})` }));
        label.setAttribute('x', String(Math.min(a, b) + 6));
        g.append(label);
      }
      svg.append(g);
    });
    box.append(svg);
  }

  // ------------------------------------------------------------------ live updates
  function onRun(info) {
    const known = state.runs.has(info.id);
    const before = state.runs.get(info.id);
    state.runs.set(info.id, info);
    if (!known) {
      state.checked.add(info.id);
      getJson(`/api/metrics?run=${encodeURIComponent(info.id)}`).then((m) => { addLines(info.id, m.lines); chartsSoon(); });
    }
    renderRuns();
    if (state.focus === null) setFocus(info.id);
    else if (info.id === state.focus && before) {
      if (before.grids.length !== info.grids.length || before.samples !== info.samples) renderGrids(false);
      if (before.traceJson !== info.traceJson || before.stepDiagram !== info.stepDiagram) setFocus(info.id);
      else if (info.trace) renderGraph(false);
    }
  }

  function onRemove(id) {
    state.runs.delete(id);
    state.lines.delete(id);
    state.checked.delete(id);
    if (state.focus === id) { state.focus = null; const first = state.runs.keys().next(); if (!first.done) setFocus(first.value); }
    renderRuns();
    chartsSoon();
  }

  function handle(ev) {
    if (ev.type === 'run') onRun(ev.data);
    else if (ev.type === 'remove') onRemove(ev.data.id);
    else if (ev.type === 'metrics') { addLines(ev.data.id, ev.data.lines); chartsSoon(); }
    else if (ev.type === 'reset') { addLines(ev.data.id, ev.data.lines, true); chartsSoon(); }
  }

  function connect() {
    const es = new EventSource('/api/events');
    const live = $('#live');
    es.onopen = () => { live.textContent = 'live'; live.className = 'live on'; };
    es.onerror = () => { live.textContent = 'reconnecting'; live.className = 'live off'; };
    for (const type of ['run', 'metrics', 'reset', 'remove']) {
      es.addEventListener(type, (e) => {
        const ev = { type, data: JSON.parse(e.data) };
        if (state.ready) handle(ev); else state.pending.push(ev);
      });
    }
  }

  async function start() {
    connect();
    const runs = await getJson('/api/runs');
    for (const r of runs) { state.runs.set(r.id, r); state.checked.add(r.id); }
    await Promise.all(runs.map(async (r) => addLines(r.id, (await getJson(`/api/metrics?run=${encodeURIComponent(r.id)}`)).lines)));
    state.ready = true;
    renderRuns();
    renderCharts();
    for (const ev of state.pending.splice(0)) handle(ev);
    if (runs.length && state.focus === null) await setFocus(runs[0].id);
    document.body.setAttribute('data-ready', '1');
  }

  start().catch((e) => { document.body.prepend(el('p', { class: 'status-failed' }, `dashboard: ${e.message}`)); });
})();
