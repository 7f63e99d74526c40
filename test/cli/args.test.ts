// Bad command-line values are refused by name before anything runs: `--steps -5 | abc | 0` named
// no option before, and `--cfg -1` was accepted.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { numberIn, positiveInt } from '../../src/cli/args.ts';

const bin = path.resolve(import.meta.dirname, '../../bin/diffactor.js');
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('command-line values', () => {
  it.each([
    [['train', '--spec', 'specs/start.yaml', '--steps', '-5'], /option '--steps <n>' argument '-5' is invalid\. expected a positive integer/],
    [['train', '--spec', 'specs/start.yaml', '--steps', 'abc'], /option '--steps <n>' argument 'abc' is invalid/],
    [['train', '--spec', 'specs/start.yaml', '--steps', '0'], /option '--steps <n>' argument '0' is invalid/],
    [['sample', '--checkpoint', 'none.safetensors', '--cfg', '-1'], /option '--cfg <w>' argument '-1' is invalid\. expected a number ≥ 1/],
    [['sample', '--checkpoint', 'none.safetensors', '--guidance-high', '2'], /option '--guidance-high <t>' argument '2' is invalid\. expected a number in \[0, 1\]/],
    // --spec with --resume used to be ignored silently
    [['train', '--resume', 'runs/x', '--spec', 'specs/start.yaml'], /--resume runs\/x continues that run with the spec it was trained with; --spec specs\/start\.yaml would be ignored/],
  ])('%j is refused naming the option', (args, message) => {
    const r = run(...args);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message);
  }, 60_000);

  it('the parsers accept what they should', () => {
    expect(positiveInt('12')).toBe(12);
    expect(() => positiveInt('1.5')).toThrow(/positive integer/);
    expect(() => positiveInt(' ')).toThrow(/positive integer/);
    expect(numberIn(1)('1')).toBe(1);
    expect(() => numberIn(0, 1)('NaN')).toThrow(/\[0, 1\]/);
  });
});
