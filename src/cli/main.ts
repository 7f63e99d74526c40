// The diffactor command line: one sub-command per job. Each command lives in its own module and
// is loaded only when used, so `diffactor info` does not pay for the trainer.
import { readFileSync } from 'node:fs';
import { Argument, Command, Option } from 'commander';
import { nonNegativeInt, numberIn, portNumber, positiveInt } from './args.ts';

const int = positiveInt;

const program = new Command();
program
  .name('diffactor')
  .version(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version, '-V, --version')
  .description('Diffusion/flow transformers with representation alignment, trained as actors over shared tensors.')
  .showHelpAfterError();

program
  .command('info')
  .description('show the kernel backend (native ISA and threads, or why the TypeScript kernels are in use)')
  .option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => (await import('./info.ts')).info(o));

program
  .command('demo')
  .description('the engine smoke test: train a small MLP classifier on the built-in shapes and print the loss falling (not what `npm start` runs: that is `train --spec specs/start.yaml --out runs/start --fresh`, a small SiT)')
  .option('--steps <n>', 'optimisation steps', int, 600)
  .option('--seed <n>', 'seed', nonNegativeInt, 0)
  .action(async (o: { steps: number; seed: number }) => (await import('./demo.ts')).demo(o));

program
  .command('bench')
  .description('benchmarks that report ratios against a peer measured in the same run (memory: RSS growth over a long actor run)')
  .addArgument(new Argument('<what>', 'what to measure').choices(['gemm', 'attention', 'train-step', 'actors', 'memory']))
  .option('--json', 'print one JSON object instead of a table')
  .addOption(new Option('--quick', 'fewer repetitions (for smoke tests)'))
  .action(async (what: string, o: { json?: boolean; quick?: boolean }) => (await import('./bench.ts')).bench(what, o));


program
  .command('simulate')
  .description('one training step of a spec at any scale with shape-only tensors: parameters, FLOPs, memory, messages per actor and a roofline step time on N GPUs (docs/simulate.md)')
  .option('--spec <file>', 'run spec (YAML), e.g. specs/paper/repa-sit-xl2.yaml')
  .addOption(new Option('--device <name>', 'device profile: cpu (measured now), a100, h100 (data sheets)').choices(['cpu', 'a100', 'h100']).default('a100'))
  .option('--gpus <n>', 'data-parallel replicas (a ring all-reduce of the gradients)', int, 1)
  .option('--batch <n>', 'samples per replica (default train.batch_size / gpus)', int)
  .addOption(new Option('--precision <p>', 'matrix-product precision (default: the device\'s: bf16 on GPUs, fp32 on the CPU)').choices(['fp32', 'tf32', 'bf16']))
  .option('--steps <n>', 'steps the total time is given for (default train.steps)', int)
  .option('--trace <file>', 'write a Perfetto trace (Chrome JSON) of the simulated step in virtual time')
  .option('--set <path=value>', 'override a spec field (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--json', 'print one JSON object')
  .action(async (o) => { await (await import('./simulate.ts')).simulateCommand(o); });

program
  .command('train')
  .description('train a run spec on actors (worker threads + the protocol\'s xstate machine), or on the reference trainer')
  .option('--spec <file>', 'run spec (YAML), e.g. specs/sit-baseline.yaml')
  .option('--steps <n>', 'total optimisation steps (overrides train.steps)', int)
  .option('--out <dir>', 'run directory (default runs/<spec name>)')
  .option('--data <name|path>', 'dataset: builtin | fashion-mnist | cifar10 | a folder')
  .option('--resume <dir>', 'continue the run in DIR from its checkpoint')
  .option('--fresh', 'start over in --out: an existing run there is moved aside to DIR.<time>, never deleted')
  .option('--no-samples', 'skip the end-of-run sample grid')
  .addOption(new Option('--engine <name>', 'actors (worker threads) or reference (one in-process loop)').choices(['actors', 'reference']).default('actors'))
  .option('--trace', 'record every actor message: OUT/trace.jsonl, OUT/trace.json (Perfetto), OUT/step-1.mmd')
  .option('--ignore-memory', 'train even when the memory estimate says the spec does not fit this machine')
  .option('--seed <n>', 'the spec\'s seed (a run is fully determined by its spec and seed)', nonNegativeInt)
  .option('--set <path=value>', 'override a spec field, e.g. --set train.lr=1e-4 (repeatable; recorded in the run\'s spec.yaml)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--protocol-module <file>', 'a protocol composed in code: a .ts/.js module whose default export is a ProtocolDefinition (docs/protocols.md); --resume reloads it by itself')
  .action(async (o) => (await import('./train.ts')).train(o));

program
  .command('eval')
  .description('measure a checkpoint: FD, sFID, IS, precision/recall, class accuracy (evaluation classifier), CKNNA and linear probe of hidden states')
  .requiredOption('--checkpoint <file>', 'checkpoint.safetensors')
  .option('--samples <n>', 'generated images (overrides eval.samples)', int)
  .option('--sample-steps <n>', 'sampler steps (overrides eval.steps; the sampler is the spec\'s sample.sampler)', int)
  .option('--set <path=value>', 'override a field of the checkpoint\'s spec for this measurement, e.g. --set redi.rg_scale=1.5 (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--data <name|path>', 'dataset override')
  .option('--raw', 'the trained weights instead of the EMA')
  .option('--json', 'one JSON line on stdout')
  .action(async (o) => { (await import('./eval.ts')).evaluateCheckpoint(o); });

program
  .command('recon')
  .description('reconstruction error of frozen latent spaces (a VAE file, an RAE or SVG stage-1 checkpoint): decode(encode(x)) on test images, MSE and PSNR')
  .requiredOption('--autoencoder <files>', 'comma-separated files a spec\'s latent.autoencoder can name, e.g. specs/standins/vae-fashion-mnist.safetensors,runs/svg-autoencoder/checkpoint.safetensors')
  .option('--images <n>', 'test images (the first N)', int, 1000)
  .option('--data <name|path>', 'dataset (its test split)', 'fashion-mnist')
  .option('--size <n>', 'image side', int, 32)
  .option('--json', 'one JSON line per file on stdout')
  .action(async (o) => { (await import('../eval/reconstruction.ts')).reconCli(o); });

program
  .command('compare')
  .description('the reproduction study: train each spec for the same budget and steps (>= 2 seeds), evaluate, write <out>/docs/results.md')
  .option('--study <file>', 'a study file holding all of the settings below (YAML; e.g. specs/studies/full.yaml): the same study each time it is continued')
  .option('--status', 'train nothing: print every planned run with where it stands (finished, stopped at a step, to train) and its final evaluation')
  .option('--only <names>', 'train only the runs of these specs (comma-separated names, e.g. rae,rae-vae) and the stages they read, then stop without the report: a lane pointed at one claim\'s runs')
  .option('--specs <list>', 'comma-separated spec files, e.g. specs/sit-baseline.yaml,specs/repa.yaml')
  .option('--budget <time>', 'training wall time per run, e.g. 30m')
  .option('--seeds <n[,name:m]>', 'seeds per method, and of particular specs, e.g. 2,repa:3 (default 2; at least 2: a claim is decided only when every seed of one method beats every seed of the other)')
  .option('--steps <n>', 'steps per run (default: the smallest train.steps of the specs)', int)
  .option('--eval-every <n>', 'evaluate the EMA teacher every N steps (default 250)', int)
  .option('--eval-samples <n>', 'generated images per evaluation (overrides eval.samples)', int)
  .option('--eval-nfe <n>', 'sample every method at this many model evaluations per image (sets eval.nfe: equal cost across samplers)', int)
  .option('--final-samples <n>', 'evaluate each run\'s last checkpoint once more with N images (e.g. 1000); the headline table and the claims use it', int)
  .option('--final-cfg <scale[,name:scale]>', 'guidance scale of that final evaluation, and of the specs named, e.g. 2,digit:1 (default 1: unguided)')
  .option('--baseline <name>', 'the spec whose final FD the steps-to-quality table targets (default: sit-baseline when present, else the first spec), e.g. sit-latent')
  .option('--out <dir>', 'where the runs go (default runs/compare; a finished run is reused when its spec and the files it reads are unchanged)')
  .option('--archive <dir>', 'keep each finished run\'s records (no checkpoints) in DIR, e.g. docs/studies/runs, and restore them into --out where missing: commit DIR and the study continues on another machine')
  .option('--docs <dir>', 'where results.md and its images go (default <out>/docs; --docs docs rewrites the repository\'s docs/results.md)')
  .option('--data <name|path>', 'dataset override')
  .option('--set <[name:]path=value>', 'override a field of every spec, or with name: of the spec of that name, e.g. --set train.batch_size=32 --set repa:repa.encoder_depth=2 (repeatable; recorded in each run\'s spec.yaml)', (v: string, acc: string[] = []) => [...acc, v])
  .action(async (o) => (await import('./compare.ts')).compareCli(o));

program
  .command('sample')
  .description('draw a class-per-row PNG grid from a checkpoint (EMA weights unless --raw)')
  .requiredOption('--checkpoint <file>', 'checkpoint.safetensors')
  .option('--out <file>', 'PNG to write', 'samples.png')
  .addOption(new Option('--sampler <name>', 'sampler').choices(['euler', 'heun', 'sde', 'ddpm', 'ddim']))
  .option('--steps <n>', 'sampling steps', int)
  .option('--cfg <w>', 'classifier-free guidance scale (1 = none)', numberIn(1, Infinity, '1 = no guidance'))
  .option('--guidance-low <t>', 'guidance interval start (flow time)', numberIn(0, 1))
  .option('--guidance-high <t>', 'guidance interval end (flow time)', numberIn(0, 1))
  .option('--classes <list>', 'comma-separated class indices (default all)')
  .option('--per-class <n>', 'samples per class (columns)', int)
  .option('--seed <n>', 'sampling seed', nonNegativeInt)
  .option('--raw', 'use the raw (non-EMA) weights')
  .option('--set <path=value>', 'override a field of the checkpoint\'s spec for this draw, e.g. --set redi.rg_scale=1.5 (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
  .action(async (o) => (await import('./sample.ts')).sample(o));

program
  .command('predict')
  .description('run the model on tensors x (B,C,H,W), t (B), y (B) from a safetensors file; writes tensor `out`. ' +
    'REPA-E: x is the BN-normalised latent (the SiT without its BN, as it samples). REG: also cls (B, d_enc), the noisy class token; writes `cls` too')
  .requiredOption('--checkpoint <file>', 'checkpoint.safetensors')
  .requiredOption('--inputs <file>', 'safetensors with x, t, y (REG: and cls)')
  .requiredOption('--out <file>', 'safetensors to write')
  .option('--ema', 'use the EMA weights')
  .action(async (o) => (await import('./predict.ts')).predict(o));

program
  .command('export')
  .description('write a checkpoint\'s weights only (EMA unless --raw; a joint VAE\'s too), without optimiser state, heads or RNG streams: for sample, eval and predict, not --resume')
  .requiredOption('--checkpoint <file>', 'checkpoint.safetensors (or one of DIR/checkpoints/)')
  .requiredOption('--out <file>', 'safetensors to write')
  .option('--raw', 'the trained weights instead of the EMA')
  .action(async (o) => (await import('./export.ts')).exportCli(o));

program
  .command('inspect')
  .description('list what a checkpoint or weights file holds: tensor groups (weights, EMA, heads, optimiser, VAE) with their sizes, step and spec')
  .argument('<file>', 'a .safetensors file')
  .option('--json', 'print JSON')
  .action(async (file: string, o: { json?: boolean }) => (await import('./inspect.ts')).inspect(file, o));

program
  .command('plot')
  .description('loss and metric curves of a run from DIR/metrics.jsonl, smoothed, as DIR/metrics.svg')
  .argument('<dir>', 'run directory (or its metrics.jsonl)')
  .option('--smooth <a>', 'EMA smoothing weight of the training curves in [0, 1) (0: none); the raw curve stays behind it, faint', numberIn(0, 0.999), 0.9)
  .option('--out <file>', 'SVG to write (default DIR/metrics.svg)')
  .option('--fields <list>', 'comma-separated metrics.jsonl fields to plot (default: loss, the loss terms, and every evaluation metric)')
  .action(async (dir: string, o) => { await (await import('./plot.ts')).plotCli(dir, o); });

program
  .command('trace')
  .description('summarise a recorded trace: per-actor messages, tensor bytes, busy and idle time, first NaN/Inf')
  .argument('<dir>', 'run directory holding trace.jsonl (or the file itself)')
  .option('--json', 'print JSON')
  .action(async (dir: string, o: { json?: boolean }) => (await import('./trace.ts')).trace(dir, o));

program
  .command('serve')
  .description('a live dashboard of runs in the browser (read-only): status, curves as metrics.jsonl grows, seed bands of a study, sample grids per evaluation, the actor graph from trace.jsonl, spec and inputs')
  .argument('[dir...]', 'run directories or study folders (folders of runs); default runs')
  .option('--port <n>', 'TCP port (0: any free one)', portNumber, 8080)
  .option('--host <addr>', 'address to listen on (127.0.0.1: this machine only)', '127.0.0.1')
  .action(async (dirs: string[], o) => (await import('./serve.ts')).serveCli(dirs, o));

// Stand-in models (issue 5): one sub-command per model under `standin`; attach new ones here.
const standin = program.command('standin').description('train a stand-in model that diffactor ships (no downloads): classifier, ...; writes runs/standins/, not the shipped specs/standins/, unless --out names it');
standin
  .command('classifier')
  .description('train the evaluation classifier (a small ResNet, labels, cross-entropy) whose features the metrics use')
  .addOption(new Option('--data <name>', 'training data').choices(['fashion-mnist', 'builtin']).default('fashion-mnist'))
  .option('--epochs <n>', 'passes over the training split (default 3)', int)
  .option('--out <file>', 'safetensors to write (default runs/standins/classifier-<data>.safetensors; --out specs/standins/classifier-<data>.safetensors replaces the shipped one)')
  .option('--seed <n>', 'seed', nonNegativeInt, 0)
  .action(async (o) => (await import('./standin.ts')).standinClassifier(o));

standin
  .command('vae')
  .description('train the VAE (diffusers AutoencoderKL layout, 32×32 → 4×8×8) with L1 + KL; latent stats go in the metadata')
  .addOption(new Option('--data <name>', 'training data').choices(['fashion-mnist', 'builtin']).default('fashion-mnist'))
  .option('--minutes <m>', 'training budget in minutes, turned into a step count before training (default 15)', numberIn(0.01))
  .option('--steps <n>', 'exact step count (replays a budgeted run; overrides --minutes)', int)
  .option('--preset <name>', 'VAE preset (VAE-T, VAE-P)', 'VAE-T')
  .option('--out <file>', 'safetensors to write (default runs/standins/vae-<data>.safetensors; --out specs/standins/vae-<data>.safetensors replaces the shipped one)')
  .option('--png <file>', 'also write originals over reconstructions of the first 12 test images')
  .option('--seed <n>', 'seed', nonNegativeInt, 0)
  .action(async (o) => (await import('./standin.ts')).standinVae(o));

standin
  .command('encoder')
  .description('train the self-supervised ViT encoder for REPA/REG (no labels; DINOv2 layout, 8×8 patch tokens) and linear-probe it')
  .addOption(new Option('--data <name>', 'training data').choices(['fashion-mnist', 'builtin']).default('fashion-mnist'))
  .addOption(new Option('--objective <name>', 'SSL objective (docs/models/encoder.md)').choices(['contrastive', 'dino']).default('contrastive'))
  .option('--minutes <m>', 'wall-clock training budget; schedules follow elapsed/budget (default 15)', numberIn(0.01))
  .option('--steps <n>', 'exact step count, schedules follow step/steps (overrides --minutes)', int)
  .option('--out <file>', 'safetensors to write (default runs/standins/encoder-<data>.safetensors; --out specs/standins/encoder-<data>.safetensors replaces the shipped one)')
  .option('--probe-train <n>', 'training images for the linear probe (0 skips probing)', nonNegativeInt, 10000)
  .option('--seed <n>', 'seed', nonNegativeInt, 0)
  .action(async (o) => (await import('../standins/ssl/cli.ts')).standinEncoder(o));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // Expected failures (bad spec, missing file, NaN loss) print one clear message, not a stack.
  console.error(`diffactor: ${(e as Error).message}`);
  if (process.env.DIFFACTOR_DEBUG) console.error((e as Error).stack);
  // A run stopped by a signal exits as signalled processes do (128 + SIGINT's 2), not as a success.
  process.exitCode = (e as Error).name === 'RunInterrupted' ? 130 : 1;
}
