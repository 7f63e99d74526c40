// Tests for writeFileAtomic: content arrives complete, a failure part-way through leaves the old
// file byte-identical and no temporary file behind, and errors name the target.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import { writeSafetensors, readSafetensors } from '../../src/io/safetensors.ts';
import { tensor } from '../../src/tensor/tensor.ts';

const tmpDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'diffactor-atomic-'));

describe('writeFileAtomic', () => {
  it('writes bytes, text and chunks, replacing an existing file', () => {
    const dir = tmpDir();
    const f = path.join(dir, 'x.bin');
    writeFileAtomic(f, 'héllo');
    expect(fs.readFileSync(f, 'utf8')).toBe('héllo');
    writeFileAtomic(f, new Uint8Array([1, 2, 3]));
    expect([...fs.readFileSync(f)]).toEqual([1, 2, 3]);
    // A view into a SharedArrayBuffer, as tensor storage is.
    const sab = new Uint8Array(new SharedArrayBuffer(16)).fill(9).subarray(4, 10);
    writeFileAtomic(f, [new Uint8Array([7]), sab, new Uint8Array(0)]);
    expect([...fs.readFileSync(f)]).toEqual([7, 9, 9, 9, 9, 9, 9]);
    expect(fs.readdirSync(dir)).toEqual(['x.bin']);
    fs.rmSync(dir, { recursive: true });
  });

  it('a write that fails part-way leaves the old file intact and no temporary file', () => {
    const dir = tmpDir();
    const f = path.join(dir, 'ckpt.safetensors');
    fs.writeFileSync(f, 'old contents');
    function* failing(): Generator<Uint8Array> {
      yield new Uint8Array(1 << 20); // a first chunk really reaches the temporary file
      throw new Error('disk on fire');
    }
    expect(() => writeFileAtomic(f, failing())).toThrow(`writeFileAtomic ${f}: disk on fire`);
    expect(fs.readFileSync(f, 'utf8')).toBe('old contents');
    expect(fs.readdirSync(dir)).toEqual(['ckpt.safetensors']);
    fs.rmSync(dir, { recursive: true });
  });

  it('a rejected safetensors write keeps the previous checkpoint readable', () => {
    const dir = tmpDir();
    const f = path.join(dir, 'model.safetensors');
    writeSafetensors(f, { w: tensor([1, 2, 3]) });
    const bad = tensor([4, 5]);
    bad.disposed = true;
    expect(() => writeSafetensors(f, { w: tensor([9, 9, 9]), bad })).toThrow(/released/);
    expect(Array.from(readSafetensors(f).tensors.get('w')!.data)).toEqual([1, 2, 3]);
    expect(fs.readdirSync(dir)).toEqual(['model.safetensors']);
    fs.rmSync(dir, { recursive: true });
  });

  it('names the target when its directory does not exist', () => {
    const f = path.join(os.tmpdir(), 'diffactor-no-such-dir-' + process.pid, 'x');
    expect(() => writeFileAtomic(f, 'x')).toThrow(`writeFileAtomic ${f}: ENOENT`);
  });
});
