// Parsers of command-line values. A bad value is a commander InvalidArgumentError, so the message
// names the option and what it got ("option '--steps <n>' argument '-5' is invalid. expected a
// positive integer"), never a bare error from deep inside a run.
import { InvalidArgumentError } from 'commander';

export function positiveInt(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer (1, 2, 3, ...).');
  return n;
}

export function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected an integer ≥ 0.');
  return n;
}

/** A finite number in [min, max]. */
export const numberIn = (min: number, max = Infinity, what = '') => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new InvalidArgumentError(`expected a number ${max === Infinity ? `≥ ${min}` : `in [${min}, ${max}]`}${what ? ` (${what})` : ''}.`);
  }
  return n;
};

/** A TCP port: an integer in [0, 65535] (0: the system picks a free one). */
export function portNumber(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number in [0, 65535] (0: any free port).');
  return n;
}
