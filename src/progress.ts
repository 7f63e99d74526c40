// One progress bar style for every long job (step, loss, it/s, ETA). On a non-TTY (CI, pipes) it
// prints a plain line every `every` steps instead of redrawing.
import cliProgress from 'cli-progress';

export interface Progress { update(step: number, fields: Record<string, string | number>): void; stop(): void }

/**
 * A remaining time as people write it: 42s, 7m05s, 1h02m. Rounded to whole seconds first, so a
 * minute never shows as 60s (cli-progress's own eta printed `7m60s`); no estimate: –.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/**
 * Steps per second since the bar started at step `start`, or – while too little time has passed
 * to say (a first update within milliseconds printed 1e9 it/s).
 */
const rateOf = (done: number, elapsed: number): string => (elapsed >= 0.1 ? (done / elapsed).toFixed(1) : '–');

/** The ETA at `step` of `total`, `done` steps having taken `elapsed` seconds (– before the first step). */
const eta = (step: number, done: number, total: number, elapsed: number): string => (done > 0 ? formatDuration(((total - step) * elapsed) / done) : '–');

/**
 * A bar over steps `start`..`total`: a resumed run starts at its checkpoint's step, and its rate
 * and ETA count the steps done in this process only (counted from 0 they read thousands of it/s
 * and an ETA of seconds right after a resume).
 */
export function progressBar(total: number, label: string, every = Math.max(1, Math.floor(total / 10)), start = 0): Progress {
  const t0 = Date.now();
  const fmt = (f: Record<string, string | number>) => Object.entries(f).map(([k, v]) => `${k} ${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : v}`).join('  ');
  if (!process.stderr.isTTY) {
    return {
      update(step, fields) {
        if (step % every !== 0 && step !== total) return;
        const s = (Date.now() - t0) / 1000;
        console.error(`${label} ${step}/${total}  ${fmt(fields)}  ${rateOf(step - start, s)} it/s  eta ${s >= 0.1 ? eta(step, step - start, total, s) : '–'}`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar({
    format: `${label} |{bar}| {value}/{total}  {fields}  {rate} it/s  eta {left}`,
    hideCursor: true,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  bar.start(total, start, { fields: '', rate: '–', left: '–' });
  return {
    update(step, fields) {
      const s = (Date.now() - t0) / 1000;
      bar.update(step, { fields: fmt(fields), rate: rateOf(step - start, s), left: s >= 0.1 ? eta(step, step - start, total, s) : '–' });
    },
    stop() { bar.stop(); },
  };
}
