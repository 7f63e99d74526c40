// `diffactor train`: run a spec on actors (worker threads, the protocol's xstate machine) or, with
// --engine reference, on the in-process reference trainer; both write the same run directory.
import path from 'node:path';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { loadSpec } from '../spec/load.ts';
import { runTrainingAsync } from '../run/run.ts';
import { runActors } from '../run/actorRun.ts';
import { backendInfo } from '../kernels/index.ts';
import { loadProtocolModule, readProtocolRecord } from '../protocols/module.ts';
import { runInputs, writeRunInputs } from '../study/runInputs.ts';
import { LOCK_FILE, processAlive } from '../io/lock.ts';
import { stopOnSignals } from './stopOnSignals.ts';

/**
 * A new run records what it reads (inputs.json: the spec and a hash of each file it reads, as a
 * study run does, study/runInputs.ts) for readers such as `diffactor serve`. Not over a directory
 * that holds a run or that a live run has locked (the run itself refuses those).
 */
function recordInputs(out: string, spec: NonNullable<ReturnType<typeof loadSpec>>, data?: string): void {
  if (existsSync(path.join(out, 'checkpoint.safetensors'))) return;
  try {
    const owner = JSON.parse(readFileSync(path.join(out, LOCK_FILE), 'utf8')) as { pid?: number };
    if (typeof owner.pid === 'number' && processAlive(owner.pid)) return;
  } catch {
    // no lock, or a torn one
  }
  mkdirSync(out, { recursive: true });
  writeRunInputs(out, runInputs(spec, data));
}

export interface TrainCliOptions {
  spec?: string; steps?: number; out?: string; data?: string; resume?: string; samples?: boolean; fresh?: boolean;
  engine?: 'actors' | 'reference'; trace?: boolean; protocolModule?: string; ignoreMemory?: boolean;
  /** The spec's seed, and `path=value` overrides of its fields (recorded in the run's spec.yaml). */
  seed?: number; set?: string[];
}

export async function train(o: TrainCliOptions): Promise<void> {
  if (!o.spec && !o.resume) throw new Error('train: pass --spec FILE, or --resume DIR to continue a run');
  if (o.spec && o.resume) throw new Error(`train: --resume ${o.resume} continues that run with the spec it was trained with; --spec ${o.spec} would be ignored — drop --spec (or start a new run with --out)`);
  const engine = o.engine ?? 'actors';
  if (o.trace && engine !== 'actors') throw new Error('train: --trace records actor messages; it needs --engine actors');
  // Read by the memory check of either engine (build/memory.ts), in this process and its workers.
  if (o.ignoreMemory) process.env.DIFFACTOR_IGNORE_MEMORY = '1';
  if (o.resume && (o.seed !== undefined || o.set?.length)) throw new Error(`train: --resume ${o.resume} continues that run as it was specified; --seed and --set apply to new runs`);
  const spec = o.spec ? loadSpec(o.spec, [...(o.seed !== undefined ? [`seed=${o.seed}`] : []), ...(o.set ?? [])]) : undefined;
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
  if (spec && !o.resume) recordInputs(out, spec, o.data);
  const stop = stopOnSignals();
  let r: Awaited<ReturnType<typeof runActors>> | Awaited<ReturnType<typeof runTrainingAsync>>;
  try {
    const run = { ...common, signal: stop.signal };
    r = engine === 'actors' ? await runActors({ ...run, trace: o.trace, protocol, protocolModule: moduleFile }) : await runTrainingAsync(run);
  } finally {
    stop.dispose();
  }
  const last = r.logs.at(-1);
  const files = ['checkpoint.safetensors', 'metrics.jsonl', ...(o.samples === false ? [] : ['samples.png']), ...(o.trace ? ['trace.jsonl', 'trace.json (Perfetto)', 'step-*.mmd'] : [])];
  console.error(`done: step ${last?.step ?? '-'}${last ? `, loss ${last.loss.toFixed(4)}` : ''}; wrote ${files.map((f) => path.join(out, f)).join(', ')}`);
  if (o.trace) console.error(`per-actor summary: npx diffactor trace ${out}`);
}
