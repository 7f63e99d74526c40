#!/usr/bin/env node
// The `diffactor` command: registers tsx so the TypeScript sources run as they are, then hands
// over to the CLI. No build step stands between a change and its run.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
