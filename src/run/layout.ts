// Names of the files a run directory holds besides the checkpoint and metrics (runDir.ts), for
// the engines that write them and for readers (`diffactor serve`) that should not load an engine
// to know them. Not here: writing them (runDir.ts).

/** A run that stopped on an error: { step, reason, time } (runDir.ts recordFailure). */
export const FAILURE_FILE = 'failure.json';

/** Evaluation grids, one small PNG per evaluation step: evals/step-000200.png. */
export const EVALS_DIR = 'evals';

export function evalGridName(step: number): string {
  return `step-${String(step).padStart(6, '0')}.png`;
}
