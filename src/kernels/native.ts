// Loads the native addon (native/build/Release/diffactor.node) and wraps it as a Kernels object.
// It never throws: when the addon is missing or fails to load, it says why in `info.reason`.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Kernels } from './types.ts';

export interface NativeInfo {
  loaded: boolean;
  /** Instruction set the addon chose at run time (avx512, avx2, scalar), or 'none'. */
  isa: string;
  /** Size of the addon's process-wide thread pool. */
  threads: number;
  /** Why the addon is not used, when it is not. */
  reason?: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const addonPath = path.resolve(here, '../../native/build/Release/diffactor.node');

export function loadNative(): { kernels: Kernels | null; info: NativeInfo } {
  if (!existsSync(addonPath)) {
    return { kernels: null, info: { loaded: false, isa: 'none', threads: 0, reason: `addon not built (${addonPath} missing; run npm run build:native)` } };
  }
  try {
    const addon = createRequire(import.meta.url)(addonPath);
    return { kernels: wrap(addon), info: { loaded: true, isa: addon.isa(), threads: addon.threads() } };
  } catch (e) {
    return { kernels: null, info: { loaded: false, isa: 'none', threads: 0, reason: `addon failed to load: ${(e as Error).message}` } };
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function wrap(addon: any): Kernels {
  throw new Error('native wrapper not written yet');
}
