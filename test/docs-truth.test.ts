// The README and docs say what the code does (issue 19): every command `diffactor --help` lists is
// in docs/architecture.md's command list and in the README's commands table; the README's "train
// today" row names exactly the registered methods (src/methods/registry.ts) and its "planned" row
// none of them; `npm start` is described as what package.json runs, and `demo --help` does not
// claim to be it; every shipped spec states its rough duration on two cores in its header.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { methodNames } from '../src/methods/registry.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (f: string) => readFileSync(path.join(root, f), 'utf8');
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [path.join(root, 'bin/diffactor.js'), ...args], { encoding: 'utf8', env: { ...process.env, COLUMNS: '200' } });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
};

describe('docs match the code', () => {
  it('every command of diffactor --help is in docs/architecture.md\'s list and the README', () => {
    const help = cli('--help');
    const commands = [...help.split('Commands:')[1].matchAll(/^ {2}([a-z-]+)/gm)].map((m) => m[1]).filter((c) => c !== 'help');
    expect(commands.length).toBeGreaterThan(10);
    const listed = /cli\["cli\/ — the diffactor command: ([^"]+)"\]/.exec(read('docs/architecture.md'))![1].split(', ');
    expect([...listed].sort()).toEqual([...commands].sort());
    const readme = read('README.md');
    for (const c of commands) expect(readme, `README: npx diffactor ${c}`).toMatch(new RegExp(`\`npx diffactor ${c}\\b`));
  }, 30_000);

  it('the README\'s "train today" row names exactly the registered methods; "planned" names none', () => {
    const readme = read('README.md');
    const today = readme.split('\n').find((l) => l.includes('**train today**'))!;
    const planned = readme.split('\n').find((l) => l.includes('| planned')) ?? ''; // no row once every planned method trains
    const named = [...today.split('|')[1].matchAll(/`([a-z-]+)`/g)].map((m) => m[1]);
    expect(named.sort(), 'update the README table when a method is registered').toEqual([...methodNames()].sort());
    for (const m of methodNames()) expect(planned).not.toMatch(new RegExp(`\\b${m}\\b`, 'i'));
  });

  it('npm start is what package.json runs, in the README and in demo --help', () => {
    const start = JSON.parse(read('package.json')).scripts.start as string;
    expect(start).toMatch(/^node bin\/diffactor\.js train --spec specs\/start\.yaml\b/);
    const quick = read('README.md').split('\n').find((l) => l.startsWith('npm install && npm start'))!;
    expect(quick).toContain(start.replace('node bin/diffactor.js ', ''));
    expect(quick).not.toMatch(/demo/);
    const demo = cli('demo', '--help').replace(/\s+/g, ' ');
    expect(demo).toMatch(/not what `npm start` runs: that is `train --spec specs\/start\.yaml/);
  }, 30_000);

  it('the README says CPU only and how to install Fashion-MNIST', () => {
    const readme = read('README.md');
    expect(readme).toMatch(/\*\*CPU only today\.\*\*/);
    expect(readme).toContain('apt-get install dataset-fashion-mnist');
  });

  it('every shipped spec states its rough duration on two cores in its header', () => {
    const specs = readdirSync(path.join(root, 'specs')).filter((f) => f.endsWith('.yaml'));
    expect(specs.length).toBeGreaterThan(5);
    for (const f of specs) {
      const header = read(`specs/${f}`).split('\n').filter((l) => l.startsWith('#')).join('\n');
      // start.yaml (npm start) says its own, in minutes; the method specs carry a "Duration on two
      // cores:" line, and the header names a time (the line itself or a timing line it points to).
      if (f === 'start.yaml') {
        expect(header, `specs/${f}`).toMatch(/minutes on two cores/);
        continue;
      }
      expect(header, `specs/${f}`).toMatch(/^# Duration on two cores: /m);
      expect(header, `specs/${f}: a time`).toMatch(/\d+(\.\d+)?\s*(ms|s|min|h)\b/);
    }
  });
});
