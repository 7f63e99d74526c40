#!/usr/bin/env node
// Builds the native addon (native/ -> native/build/Release/diffactor.node) with node-gyp.
// Run by `npm install` and by `npm run build:native` (--force rebuilds even when up to date).
// Never fails the install: with no C++ compiler, no node-gyp, or a failed build it prints one line
// and exits 0, and diffactor uses the TypeScript kernels. The full build log goes to
// native/build-native.log. Set DIFFACTOR_SKIP_NATIVE=1 to skip the build. Concurrent runs on one
// checkout wait for each other (a lock file in the temp dir), since node-gyp rebuild deletes build/.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = path.join(root, 'native');
const addon = path.join(nativeDir, 'build', 'Release', 'diffactor.node');
const logFile = path.join(nativeDir, 'build-native.log');
const force = process.argv.includes('--force');

class Skip extends Error {}
function skip(reason) {
  throw new Skip(reason);
}

function describe() {
  const a = createRequire(import.meta.url)(addon);
  return `isa: ${a.isa()}, threads: ${a.threads()}`;
}

// A hash of every build input, taken before the build and stored beside the addon: "up to date"
// means the inputs still hash the same (mtimes mislead when sources change during a build).
const stampFile = path.join(nativeDir, 'build', 'sources.sha1');
function sourcesHash() {
  const h = createHash('sha1');
  const src = path.join(nativeDir, 'src');
  for (const f of ['binding.gyp', ...readdirSync(src).sort().map((f) => path.join('src', f))]) {
    h.update(f).update(readFileSync(path.join(nativeDir, f)));
  }
  return h.digest('hex');
}

function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
    path.join(root, 'node_modules/node-gyp/bin/node-gyp.js'),
  ];
  const npmWhich = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' });
  if (npmWhich.status === 0) {
    candidates.push(path.join(npmWhich.stdout.trim(), 'npm/node_modules/node-gyp/bin/node-gyp.js'));
  }
  return candidates.find((c) => c && existsSync(c));
}

// node-gyp reads the Node headers location from npm's config (npm sets npm_config_nodedir for
// scripts it runs); when run by hand, ask npm, so an offline machine never tries to download them.
function nodedirArgs() {
  let dir = process.env.npm_config_nodedir;
  if (!dir) {
    const r = spawnSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' });
    if (r.status === 0) dir = r.stdout.trim();
  }
  return dir && dir !== 'undefined' && dir !== 'null' ? [`--nodedir=${dir}`] : [];
}

const lockFile = path.join(os.tmpdir(), `diffactor-build-${createHash('sha1').update(nativeDir).digest('hex').slice(0, 10)}.lock`);

// Waits up to 10 minutes for another build of this checkout; a lock older than that is stale.
function withLock(fn) {
  const start = Date.now();
  for (;;) {
    try {
      closeSync(openSync(lockFile, 'wx'));
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      let age = 0;
      try { age = Date.now() - statSync(lockFile).mtimeMs; } catch { continue; }
      if (age > 10 * 60_000) { try { unlinkSync(lockFile); } catch { /* raced: retry */ } continue; }
      if (Date.now() - start > 10 * 60_000) skip(`another build holds ${lockFile}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try { fn(); } finally { try { unlinkSync(lockFile); } catch { /* already gone */ } }
}

function main() {
  if (process.env.DIFFACTOR_SKIP_NATIVE === '1') skip('DIFFACTOR_SKIP_NATIVE=1');
  if (!existsSync(path.join(nativeDir, 'binding.gyp'))) skip('native/binding.gyp missing');

  const hash = sourcesHash();
  if (!force && existsSync(addon) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === hash) {
    try {
      console.log(`diffactor: native addon up to date (${describe()})`);
      return;
    } catch {
      // a stale or broken binary: rebuild it below
    }
  }

  const cxx = process.env.CXX || 'c++';
  if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0) skip(`no C++ compiler (${cxx})`);
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) skip('node-gyp not found');

  const r = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--jobs=max', ...nodedirArgs()], {
    cwd: nativeDir,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const log = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  writeFileSync(logFile, log);
  if (r.status !== 0) {
    const firstError = log.split('\n').find((l) => /error/i.test(l) && !/^gyp (info|ERR! (stack|System|command|cwd|node|not ok))/.test(l));
    skip(`node-gyp failed: ${(firstError ?? `exit ${r.status}`).trim().slice(0, 200)}; see native/build-native.log`);
  }
  writeFileSync(stampFile, hash);
  try {
    console.log(`diffactor: native addon built (${describe()})`);
  } catch (e) {
    skip(`built but failed to load: ${e.message}`);
  }
}

try {
  withLock(main);
} catch (e) {
  const reason = e instanceof Skip ? e.message : `build script error: ${e.message}`;
  console.log(`diffactor: native addon not built (${reason}); using the TypeScript kernels`);
}
