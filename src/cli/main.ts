// The diffactor command line: one sub-command per job. Each command lives in its own module and
// is loaded only when used, so `diffactor info` does not pay for the trainer.
import { Argument, Command, Option } from 'commander';

const program = new Command();
program
  .name('diffactor')
  .description('Diffusion/flow transformers with representation alignment, trained as actors over shared tensors.')
  .showHelpAfterError();

program
  .command('info')
  .description('show the kernel backend (native ISA and threads, or why the TypeScript kernels are in use)')
  .option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => (await import('./info.ts')).info(o));

program
  .command('demo')
  .description('train a small MLP classifier with the engine and print the loss falling (what `npm start` runs)')
  .option('--steps <n>', 'optimisation steps', (v) => parseInt(v, 10), 600)
  .option('--seed <n>', 'seed', (v) => parseInt(v, 10), 0)
  .action(async (o: { steps: number; seed: number }) => (await import('./demo.ts')).demo(o));

program
  .command('bench')
  .description('benchmarks that report ratios against a peer measured in the same run')
  .addArgument(new Argument('<what>', 'what to measure').choices(['gemm', 'attention']))
  .option('--json', 'print one JSON object instead of a table')
  .addOption(new Option('--quick', 'fewer repetitions (for smoke tests)'))
  .action(async (what: string, o: { json?: boolean; quick?: boolean }) => (await import('./bench.ts')).bench(what, o));

await program.parseAsync(process.argv);
