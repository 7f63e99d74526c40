// The layer rule (docs/architecture.md, scripts/check-layers.ts) holds for the repository, and the
// checker does find a violation: an import from a higher layer, a fat worker entry, an unknown folder.
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkLayers } from '../scripts/check-layers.ts';

const root = path.resolve(import.meta.dirname, '..');

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'layers-'));
  mkdirSync(path.join(dir, 'workers'), { recursive: true });
  for (const [f, body] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), body);
  }
  return dir;
}

describe('layers', () => {
  it('src/ only imports downward and workers/ entries are thin', () => {
    expect(checkLayers(root)).toEqual([]);
  });

  it('reports an import from above, a multi-line one, a fat worker and an unlisted folder', () => {
    const v = checkLayers(tree({
      'src/tensor/a.ts': "import { b } from '../models/b.ts';\n",
      'src/nn/c.ts': "import {\n  x,\n  y,\n} from '../build/parts.ts';\nimport type { T } from '../tensor/a.ts';\n",
      'src/models/b.ts': "export const b = 1;\n",
      'src/build/parts.ts': "export const x = 1, y = 2;\n",
      'src/mystery/d.ts': "export {};\n",
      'workers/student.ts': "import { serveActor } from '../src/actors/host.ts';\nimport { buildBackbone } from '../src/build/parts.ts';\n",
    }));
    expect(v.map((x) => `${x.file} ${x.imports}`).sort()).toEqual([
      'src/mystery/d.ts ',
      'src/nn/c.ts ../build/parts.ts',
      'src/tensor/a.ts ../models/b.ts',
      'workers/student.ts ../src/build/parts.ts',
    ]);
    expect(v.find((x) => x.file === 'src/tensor/a.ts')!.why).toMatch(/tensor \(layer 1\) imports models \(layer 4\), which is above it/);
  });
});
