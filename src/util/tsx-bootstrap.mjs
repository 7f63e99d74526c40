// Entry of every worker thread that runs TypeScript: registers tsx in this thread (a worker does
// not inherit the parent's loader hooks), then imports the real entry named in argv[2].
import { register } from 'tsx/esm/api';

register();
await import(process.argv[2]);
