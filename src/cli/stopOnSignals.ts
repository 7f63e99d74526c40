// Ctrl-C / SIGTERM for a command that trains (train, compare): the first signal stops the run in
// flight after its step, with a checkpoint; a second exits at once.
/**
 * Ctrl-C / SIGTERM: the first stops the run after the step in flight, with a checkpoint (the run
 * throws RunInterrupted, which names the resume command); a second exits at once. A trainer whose
 * parent process dies (SIGTERM to the `npx` wrapper does not reach it) stops the same way, so it
 * never trains on as an orphan.
 */
export function stopOnSignals(): { signal: AbortSignal; dispose(): void } {
  const ctl = new AbortController();
  const parent = process.ppid;
  const stop = (why: string) => {
    if (ctl.signal.aborted) {
      console.error(`\n${why} again: exiting at once (the last checkpoint stays as it was)`);
      process.exit(130);
    }
    console.error(`\n${why}: stopping after this step and writing a checkpoint (${why === 'parent process gone' ? 'kill -9 to' : 'press Ctrl-C again to'} quit at once)`);
    ctl.abort();
  };
  const onInt = () => stop('interrupted (SIGINT)');
  const onTerm = () => stop('terminated (SIGTERM)');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const watch = setInterval(() => { if (process.ppid !== parent && !ctl.signal.aborted) stop('parent process gone'); }, 500);
  watch.unref();
  return {
    signal: ctl.signal,
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      clearInterval(watch);
    },
  };
}
