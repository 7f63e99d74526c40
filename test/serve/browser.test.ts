// diffactor serve in a real browser: Debian's headless Chromium (/usr/bin/chromium; .ci/run
// installs the `chromium` package) driven by playwright-core, against run directories written by
// hand (test/serve/fixtures.ts). The page loads a finished run with the right number of points, a
// line appended to metrics.jsonl appears without a reload, the actor graph has one node per actor,
// the step diagram has one arrow per message, a failed run shows its reason, runs come and go, a study draws a group of seeds as a mean with a band, and the
// sample-grid slider walks the evaluation steps.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { serve, type Served } from '../../src/serve/server.ts';
import { trainLine, writeRun, type FixtureRun } from './fixtures.ts';

const CHROMIUM = '/usr/bin/chromium';

// The callbacks of page.evaluate / waitForFunction run in the page (tsconfig has no DOM library).
declare const window: any;
declare const document: any;

let browser: Browser, page: Page, s: Served, study: Served, run: FixtureRun, root: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (.ci/run installs it)`);
  root = mkdtempSync(path.join(tmpdir(), 'serve-browser-'));
  run = writeRun(path.join(root, 'one'), { name: 'repa-tiny', trained: 30, evalEvery: 10 });
  const st = path.join(root, 'study');
  for (const seed of [0, 1]) writeRun(path.join(st, `repa-seed${seed}`), { name: `repa-seed${seed}`, seed, trained: 20, lossStart: 1.5 + 0.1 * seed, fdStart: 300 + 20 * seed });
  for (const seed of [0, 1]) writeRun(path.join(st, `sit-seed${seed}`), { name: `sit-seed${seed}`, seed, trained: 20, lossStart: 1.8 + 0.1 * seed, fdStart: 400 + 20 * seed });
  writeRun(path.join(st, 'broken-seed0'), { name: 'broken-seed0', trained: 5, steps: 20, finished: false, failed: 'training diverged at step 5 in student.forward: loss became NaN', trace: false });
  [s, study] = await Promise.all([serve({ dirs: [run.dir], port: 0, pollMs: 100 }), serve({ dirs: [st], port: 0, pollMs: 100 })]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage();
});

afterAll(async () => {
  await browser?.close();
  await s?.close();
  await study?.close();
});

const points = (p: Page, key: string) => p.locator(`.chart[data-key="${key}"]`).getAttribute('data-points');

describe('one finished run', () => {
  it('loads with the right number of points, the status, the graph and the files', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(s.url);
    await page.waitForSelector('body[data-ready]');
    expect(await page.locator('#runs tbody tr').count()).toBe(1);
    expect(await page.locator('#runs tbody tr .status-finished').textContent()).toBe('finished');
    expect(await points(page, 'loss')).toBe(String(run.trainLines));
    expect(await points(page, 'eval:fd')).toBe(String(run.evalLines));
    // One run: loss and its terms (diff, proj) in one chart.
    expect(await page.evaluate(() => (window as any).dashboard.charts.get('loss').plot.series.map((x: any) => x.label))).toEqual(['step', 'loss', 'diff', 'proj']);
    for (const k of ['grad_norm', 'lr', 'eval:sfid', 'eval:val_loss']) expect(await page.locator(`.chart[data-key="${k}"]`).count(), k).toBe(1);
    // Actor graph: one node per actor of the trace.
    await page.waitForSelector('.actor-node');
    const actors = new Set(run.events.flatMap((e) => [e.from, e.to]));
    expect(await page.locator('.actor-node').count()).toBe(actors.size);
    expect((await page.locator('.actor-node').evaluateAll((ns: any[]) => ns.map((n) => n.getAttribute('data-actor')))).sort()).toEqual([...actors].sort());
    expect(await page.locator('#edges tbody tr').count()).toBe(4);
    // trace.json to download, the spec, the inputs record, the step diagram.
    const href = await page.locator('a[download="trace.json"]').getAttribute('href');
    const dl = await page.request.get(new URL(href!, s.url).href);
    expect(dl.headers()['content-disposition']).toMatch(/attachment/);
    expect(JSON.parse(await dl.text()).traceEvents.length).toBeGreaterThan(0);
    await page.waitForFunction(() => document.querySelector('#spec')!.textContent!.includes('name: repa-tiny'));
    expect(await page.locator('#inputs').textContent()).toContain('encoder.checkpoint');
    expect(await page.locator('#stepdiagram').textContent()).toContain('sequenceDiagram');
    // The step diagram drawn: one lifeline per participant, one arrow per message of step 1.
    const step1 = run.events.filter((e) => e.step === 1);
    expect(await page.locator('#sequence .lifeline').count()).toBe(new Set(step1.flatMap((e) => [e.from, e.to])).size);
    expect(await page.locator('#sequence .msg.request line').count()).toBe(step1.filter((e) => e.kind === 'request').length);
    expect(await page.locator('#sequence .msg.reply line').count()).toBe(step1.filter((e) => e.kind === 'reply').length);
    // Sample grids: three evaluations and the final samples.png; the slider walks them.
    expect(await page.locator('#grid-slider').getAttribute('max')).toBe(String(run.evalLines));
    expect(await page.locator('#grid-label').textContent()).toMatch(/final samples\.png/);
    await page.locator('#grid-slider').fill('0');
    expect(await page.locator('#grid-label').textContent()).toMatch(/evaluation at step 10 \(1 of 4\)/);
    expect(await page.locator('#grid-img').getAttribute('src')).toMatch(/evals\/step-000010\.png$/);
    expect(errors).toEqual([]);
  });

  it('a line appended to metrics.jsonl appears without a reload', async () => {
    const before = await page.evaluate(() => performance.timeOrigin);
    appendFileSync(path.join(run.dir, 'metrics.jsonl'), `${JSON.stringify(trainLine(31))}\n`);
    await page.waitForFunction((n) => document.querySelector('.chart[data-key="loss"]')?.getAttribute('data-points') === String(n), run.trainLines + 1, { timeout: 5000 });
    // A half-written line changes nothing until its newline arrives.
    appendFileSync(path.join(run.dir, 'metrics.jsonl'), '{"step": 32, "loss": 0.3');
    await page.waitForTimeout(400);
    expect(await points(page, 'loss')).toBe(String(run.trainLines + 1));
    appendFileSync(path.join(run.dir, 'metrics.jsonl'), ', "lr": 0.001}\n');
    await page.waitForFunction((n) => document.querySelector('.chart[data-key="loss"]')?.getAttribute('data-points') === String(n), run.trainLines + 2, { timeout: 5000 });
    expect(await page.evaluate(() => performance.timeOrigin)).toBe(before); // same document: no reload
  });
});

describe('a study folder', () => {
  it('lists every run, shows the failure\'s reason and draws seeds as mean and band', async () => {
    const p = await browser.newPage();
    await p.goto(study.url);
    await p.waitForSelector('body[data-ready]');
    expect(await p.locator('#runs tbody tr').count()).toBe(5);
    const failed = p.locator('#runs tbody tr[data-run="0/broken-seed0"]');
    expect(await failed.locator('.status-failed').textContent()).toBe('failed');
    expect(await failed.textContent()).toContain('loss became NaN');
    const labels = await p.evaluate(() => (window as any).dashboard.charts.get('eval:fd').plot.series.map((x: any) => x.label));
    expect(labels).toEqual(['step', 'repa mean of 2 seeds', 'repa max', 'repa min', 'sit mean of 2 seeds', 'sit max', 'sit min']);
    const data = await p.evaluate(() => (window as any).dashboard.charts.get('eval:fd').plot.data);
    // fd at step 10: repa seeds 300/2 and 320/2 → mean 155, band [150, 160].
    expect(data[0]).toEqual([10, 20]);
    expect(data[1][0]).toBeCloseTo(155, 9);
    expect([data[3][0], data[2][0]]).toEqual([150, 160]);
    // A run that appears in the folder joins the list without a reload; one whose directory goes away leaves it.
    const late = writeRun(path.join(root, 'study', 'late-seed0'), { name: 'late-seed0', trained: 3, trace: false });
    await p.waitForFunction(() => document.querySelectorAll('#runs tbody tr').length === 6, undefined, { timeout: 5000 });
    rmSync(late.dir, { recursive: true });
    await p.waitForFunction(() => document.querySelectorAll('#runs tbody tr').length === 5, undefined, { timeout: 5000 });
    // Unticking all but one run: that run alone.
    for (const id of ['0/repa-seed1', '0/sit-seed0', '0/sit-seed1', '0/broken-seed0']) await p.locator(`#runs tr[data-run="${id}"] input`).uncheck();
    expect(await p.evaluate(() => (window as any).dashboard.charts.get('eval:fd').plot.series.map((x: any) => x.label))).toEqual(['step', 'fd']);
    await p.close();
  });
});
