// `diffactor inspect FILE`: what a checkpoint (or an exported weights file, or any safetensors)
// holds: its tensor groups by prefix (build/checkpoint.ts names them), each with tensor count,
// values and bytes, and the step, spec and format from its metadata; the header (tensor names,
// shapes and the metadata, the spec among them) is a row of its own, so the rows add up to the
// file's size. Reads the header only.
import { statSync } from 'node:fs';
import { readSafetensorsHeader } from '../io/safetensors.ts';

/** A checkpoint's tensor groups by key prefix, in the order they are named here. */
const GROUPS: [prefix: string, what: string][] = [
  ['ema.', 'EMA weights'],
  ['proj.', 'method heads (projectors)'],
  ['opt.proj.', 'AdamW state of the heads'],
  ['opt.', 'AdamW state (moments, per-parameter steps)'],
  ['vae_disc_opt.', 'AdamW state of the VAE loss\'s discriminator'],
  ['vae_disc.', 'discriminator of the VAE loss'],
  ['vae_opt.', 'AdamW state of the joint VAE'],
  ['vae.', 'joint VAE weights'],
];

export const formatBytes = (b: number) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : b >= 1e3 ? `${(b / 1e3).toFixed(1)} kB` : `${b} B`);

export interface InspectGroup { group: string; what: string; tensors: number; values: number; bytes: number }

export interface InspectRecord {
  file: string; format: string | null; step: number | null; spec: string | null; weights: string | null;
  groups: InspectGroup[]; bytes: number;
}

export function inspectFile(file: string): InspectRecord {
  const h = readSafetensorsHeader(file);
  const exported = h.metadata.format === 'diffactor-weights/1';
  const groups = new Map<string, InspectGroup>();
  for (const e of h.entries) {
    const hit = GROUPS.find(([p]) => e.name.startsWith(p));
    const [group, what] = hit ?? ['', exported ? `${h.metadata.weights === 'raw' ? 'raw' : 'EMA'} weights (official state_dict names)` : 'trained weights (official state_dict names)'];
    const g = groups.get(group) ?? { group: group || '(no prefix)', what, tensors: 0, values: 0, bytes: 0 };
    g.tensors += 1;
    g.values += e.shape.reduce((a, b) => a * b, 1);
    g.bytes += e.end - e.begin;
    groups.set(group, g);
  }
  let spec: string | null = null, step: number | null = null;
  try {
    if (h.metadata.spec) spec = (JSON.parse(h.metadata.spec) as { name?: string }).name ?? null;
    if (h.metadata.train_state) step = (JSON.parse(h.metadata.train_state) as { step?: number }).step ?? null;
    else if (h.metadata.step) step = Number(h.metadata.step);
  } catch {
    // A foreign file's metadata: shown as far as it reads.
  }
  const order = ['', ...GROUPS.map(([p]) => p)];
  const header: InspectGroup = { group: '(header)', what: 'its length, tensor names, shapes and offsets, metadata (spec, config, state)', tensors: 0, values: 0, bytes: h.dataStart };
  return {
    file, format: h.metadata.format ?? null, step, spec, weights: h.metadata.weights ?? null,
    groups: [...[...groups.entries()].sort(([a], [b]) => order.indexOf(a) - order.indexOf(b)).map(([, g]) => g), header],
    bytes: statSync(file).size,
  };
}

export function inspect(file: string, o: { json?: boolean }): void {
  const r = inspectFile(file);
  if (o.json) {
    console.log(JSON.stringify(r));
    return;
  }
  console.log(`${file}: ${r.format ?? 'safetensors (no diffactor format)'}${r.spec ? `, spec ${r.spec}` : ''}${r.step !== null ? `, step ${r.step}` : ''}, ${formatBytes(r.bytes)}`);
  const w = Math.max(...r.groups.map((g) => g.group.length), 5);
  console.log(`  ${'group'.padEnd(w)}  ${'tensors'.padStart(7)}  ${'values'.padStart(12)}  ${'bytes'.padStart(9)}  what`);
  for (const g of r.groups) {
    console.log(`  ${g.group.padEnd(w)}  ${String(g.tensors).padStart(7)}  ${g.values.toLocaleString('en-US').padStart(12)}  ${formatBytes(g.bytes).padStart(9)}  ${g.what}`);
  }
}
