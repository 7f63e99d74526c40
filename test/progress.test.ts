// The non-TTY progress lines (CI logs, pipes): one line every `every` steps and at the end, with no
// made-up ETA before any step has finished.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { formatDuration, progressBar } from '../src/progress.ts';
import { RunLog } from '../src/run/runLog.ts';

describe('progressBar on a non-TTY', () => {
  afterEach(() => vi.restoreAllMocks());
  it('prints every N steps and the last, with ETA – at step 0', () => {
    const tty = process.stderr.isTTY;
    Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true });
    const lines: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((s: string) => { lines.push(s); });
    let now = 1_000_000;
    vi.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const p = progressBar(10, 'job', 5);
      for (const step of [0, 1, 5, 7, 10]) { p.update(step, { loss: 0.5, step }); now += 1000; } // 1 s a step
    } finally {
      Object.defineProperty(process.stderr, 'isTTY', { value: tty, configurable: true });
    }
    expect(lines.map((l) => l.split('  ')[0])).toEqual(['job 0/10', 'job 5/10', 'job 10/10']);
    expect(lines[0]).toMatch(/loss 0\.5000 {2}step 0 {2}– it\/s {2}eta –$/); // counts print as integers; no rate yet
    expect(lines[1]).toMatch(/ 2\.5 it\/s {2}eta 2s$/); // step 5 after 2 s
    expect(lines[2]).toMatch(/eta 0s$/);
  });

  it('says – instead of a rate within the first 0.1 s (a sampler\'s first step printed 1000000000.0 it/s)', () => {
    const tty = process.stderr.isTTY;
    Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true });
    const lines: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((s: string) => { lines.push(s); });
    let now = 5_000;
    vi.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const p = progressBar(2, 'sample', 1);
      now += 1; // 1 ms
      p.update(1, {});
    } finally {
      Object.defineProperty(process.stderr, 'isTTY', { value: tty, configurable: true });
    }
    expect(lines[0]).toBe('sample 1/2    – it/s  eta –');
  });
});

describe('progress of a resumed run', () => {
  afterEach(() => vi.restoreAllMocks());
  /** Non-TTY lines printed by `f`, with Date.now advanced by `tick()`. */
  function lines(f: (tick: (ms: number) => void) => void): string[] {
    const tty = process.stderr.isTTY;
    Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true });
    const out: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((s: string) => { out.push(s); });
    let now = 2_000_000;
    vi.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      f((ms) => { now += ms; });
    } finally {
      Object.defineProperty(process.stderr, 'isTTY', { value: tty, configurable: true });
    }
    return out;
  }

  it('counts rate and ETA from the step it started at, not from step 0', () => {
    const out = lines((tick) => {
      const p = progressBar(100, 'train', 10, 50);
      p.update(50, {});
      tick(10_000);
      p.update(60, {}); // 10 steps in 10 s: 1 it/s, 40 steps left
    });
    expect(out).toEqual(['train 50/100    – it/s  eta –', 'train 60/100    1.0 it/s  eta 40s']);
  });

  it('a resumed run\'s bar (RunLog.startBar at the checkpoint\'s step) says 1 it/s, not 6', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'progress-'));
    const out = lines((tick) => {
      const log = new RunLog(path.join(dir, 'metrics.jsonl'), { steps: 100, log_every: 10 });
      log.startBar('train', 50, false, 123);
      for (let s = 51; s <= 60; s++) {
        tick(1000);
        log.step({ step: s, loss: 1, terms: {}, lr: 1, grad_norm: 1 }, 123 + (s - 50));
      }
      log.stopBar();
    }).filter((l) => l.startsWith('train '));
    expect(out[out.length - 1]).toMatch(/^train 60\/100  loss 1 {2}1\.0 it\/s {2}eta 40s$/);
  });
});

describe('formatDuration (the ETA)', () => {
  it('never prints 60 seconds or a NaN: 7m60s and eta NFs were printed before', () => {
    expect(formatDuration(419.6)).toBe('7m00s');
    expect(formatDuration(59.6)).toBe('1m00s');
    expect(formatDuration(59.4)).toBe('59s');
    expect(formatDuration(3599.7)).toBe('1h00m');
    expect(formatDuration(4 * 3600 + 5 * 60 + 9)).toBe('4h05m');
    expect(formatDuration(0)).toBe('0s');
    for (const bad of [NaN, Infinity, -1]) expect(formatDuration(bad)).toBe('–');
  });
});
