// `diffactor eval`: the Evaluator's metrics for one checkpoint (src/eval/checkpointEval.ts).
export { evaluateCheckpoint, type EvalCliOptions } from '../eval/checkpointEval.ts';
