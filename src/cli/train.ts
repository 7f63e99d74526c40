// `diffactor train`: run a spec on actors (worker threads, the protocol's xstate machine) or, with
// --engine reference, on the in-process reference trainer; both write the same run directory.
import path from 'node:path';
import { existsSync, renameSync } from 'node:fs';
import { loadSpec } from '../spec/load.ts';
import { runTraining } from '../run/run.ts';
import { runActors } from '../run/actorRun.ts';
import { backendInfo } from '../kernels/index.ts';
import { loadProtocolModule, readProtocolRecord } from '../protocols/module.ts';

export interface TrainCliOptions {
  spec?: string; steps?: number; out?: string; data?: string; resume?: string; samples?: boolean; fresh?: boolean;
  engine?: 'actors' | 'reference'; trace?: boolean; protocolModule?: string; ignoreMemory?: boolean;
}

export async function train(o: TrainCliOptions): Promise<void> {
  if (!o.spec && !o.resume) throw new Error('train: pass --spec FILE, or --resume DIR to continue a run');
  const engine = o.engine ?? 'actors';
  if (o.trace && engine !== 'actors') throw new Error('train: --trace records actor messages; it needs --engine actors');
  // Read by the memory check of either engine (build/memory.ts), in this process and its workers.
  if (o.ignoreMemory) process.env.DIFFACTOR_IGNORE_MEMORY = '1';
  const spec = o.spec ? loadSpec(o.spec) : undefined;
  const out = o.resume ?? o.out ?? path.join('runs', spec!.name);
  if (o.fresh && !o.resume && existsSync(out)) {
    const aside = `${out}.${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(out, aside);
    console.error(`--fresh: moved the previous run in ${out} to ${aside}`);
  }
  console.error(`diffactor train: ${spec ? spec.name : `resuming ${out}`} → ${out}  (engine: ${engine}; kernels: ${backendInfo.backend}${backendInfo.backend === 'native' ? `/${backendInfo.isa}` : ''})`);
  const common = { spec, out, data: o.data, steps: o.steps, resume: !!o.resume, samples: o.samples };
  // A composed protocol: named here, or (resuming) the one the run directory recorded.
  const moduleFile = o.protocolModule ?? (o.resume ? readProtocolRecord(out)?.module ?? undefined : undefined);
  if (moduleFile && engine !== 'actors') throw new Error('train: --protocol-module runs on actors; it needs --engine actors');
  const protocol = moduleFile ? await loadProtocolModule(moduleFile) : undefined;
  if (protocol && !o.protocolModule) console.error(`resuming with the protocol '${protocol.name}' from ${moduleFile}, as recorded in ${path.join(out, 'protocol.json')}`);
  const r = engine === 'actors' ? await runActors({ ...common, trace: o.trace, protocol, protocolModule: moduleFile }) : runTraining(common);
  const last = r.logs.at(-1);
  const files = ['checkpoint.safetensors', 'metrics.jsonl', ...(o.samples === false ? [] : ['samples.png']), ...(o.trace ? ['trace.jsonl', 'trace.json (Perfetto)', 'step-*.mmd'] : [])];
  console.error(`done: step ${last?.step ?? '-'}${last ? `, loss ${last.loss.toFixed(4)}` : ''}; wrote ${files.map((f) => path.join(out, f)).join(', ')}`);
  if (o.trace) console.error(`per-actor summary: npx diffactor trace ${out}`);
}
