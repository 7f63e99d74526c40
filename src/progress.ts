// One progress bar style for every long job (step, loss, it/s, ETA). On a non-TTY (CI, pipes) it
// prints a plain line every `every` steps instead of redrawing.
import cliProgress from 'cli-progress';

export interface Progress { update(step: number, fields: Record<string, string | number>): void; stop(): void }

export function progressBar(total: number, label: string, every = Math.max(1, Math.floor(total / 10))): Progress {
  const t0 = Date.now();
  const fmt = (f: Record<string, string | number>) => Object.entries(f).map(([k, v]) => `${k} ${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : v}`).join('  ');
  if (!process.stderr.isTTY) {
    return {
      update(step, fields) {
        if (step % every !== 0 && step !== total) return;
        const s = (Date.now() - t0) / 1000;
        const rate = step / Math.max(s, 1e-9);
        const eta = step > 0 ? `${((total - step) / rate).toFixed(0)}s` : '–'; // no rate yet at step 0
        console.error(`${label} ${step}/${total}  ${fmt(fields)}  ${rate.toFixed(1)} it/s  eta ${eta}`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar({
    format: `${label} |{bar}| {value}/{total}  {fields}  {rate} it/s  eta {eta_formatted}`,
    hideCursor: true,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  bar.start(total, 0, { fields: '', rate: '0.0' });
  return {
    update(step, fields) {
      const s = (Date.now() - t0) / 1000;
      bar.update(step, { fields: fmt(fields), rate: (step / Math.max(s, 1e-9)).toFixed(1) });
    },
    stop() { bar.stop(); },
  };
}
