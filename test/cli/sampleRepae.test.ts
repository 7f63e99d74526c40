// `diffactor sample` on a REPA-E checkpoint decodes the EMA model's latents with the jointly tuned
// VAE: the grid has image-sized tiles (16 px here, from 4×4 latents), not latent-sized ones, and it
// matches the grid the actor run wrote from the same weights, seed and settings.
import { expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { runActors } from '../../src/run/actorRun.ts';
import { sample } from '../../src/cli/sample.ts';
import { tinySpec } from '../actors/specs.ts';

it('decodes REPA-E latents to images, like the run\'s own grid', async () => {
  const spec = tinySpec('repa-e', { train: { ...tinySpec('repa-e').train, steps: 2 } });
  const out = mkdtempSync(path.join(tmpdir(), 'sample-repae-'));
  await runActors({ spec, out, quiet: true, placement: 'local' });
  const file = path.join(out, 'again.png');
  sample({ checkpoint: path.join(out, 'checkpoint.safetensors'), out: file });
  const a = PNG.sync.read(readFileSync(path.join(out, 'samples.png')));
  const b = PNG.sync.read(readFileSync(file));
  const classes = 10, perClass = spec.sample.per_class, side = 16; // builtin 16 px, f4 VAE
  expect([b.width, b.height]).toEqual([a.width, a.height]);
  expect(b.height).toBeGreaterThanOrEqual(classes * side);
  expect(b.width).toBeGreaterThanOrEqual(perClass * side);
  expect(Buffer.compare(a.data, b.data)).toBe(0);
}, 60_000);
