// Worker entry of the sampling pool's task (src/actors/sampleTask.ts), loaded by sampleTask.mjs.
export { default } from '../src/actors/sampleTask.ts';
