// safetensors reader and writer (https://github.com/huggingface/safetensors, format section):
// u64 little-endian header length N, N bytes of JSON header (tensor name -> {dtype, shape,
// data_offsets [begin, end) relative to the first data byte}, optional "__metadata__" string map,
// may be padded with spaces), then the data: every byte belongs to exactly one tensor.
// We write F32 only, with sorted names and the header padded to 8 bytes as the Rust library does,
// so a checkpoint loads into PyTorch with `safetensors.torch.load_file`. We read F32, F16, BF16,
// F64 and the integer/bool dtypes, all into float32 tensors (64-bit integers above 2^24 round).
// Every malformed file is rejected with an error naming the file and the problem, following the
// checks of the Rust reader. Not here: F8/F4/F6 dtypes, memory mapping, lazy loading.
import fs from 'node:fs';
import { endianness } from 'node:os';
import { empty, type Tensor } from '../tensor/tensor.ts';
import { fmtShape, sizeOf } from '../tensor/shape.ts';
import { decodeBF16, decodeF16 } from './halfFloat.ts';
import { isMetaArray } from '../kernels/meta.ts';
import { writeFileAtomic } from './atomic.ts';

/** Bytes per element of every dtype the format defines (sub-byte F4/F6 omitted: we cannot size them). */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8, C64: 8,
};
const KNOWN_UNSIZED = new Set(['F4', 'F6_E2M3', 'F6_E3M2']);

type Decoder = (raw: Uint8Array, out: Float32Array) => void;
// raw starts at a multiple of 8 in its buffer (toTensor ensures it), so typed views are aligned.
const view = <T>(C: new (b: ArrayBufferLike, o: number, n: number) => T, raw: Uint8Array, bytes: number): T =>
  new C(raw.buffer, raw.byteOffset, raw.length / bytes);
const DECODERS: Record<string, Decoder> = {
  F32: (raw, out) => new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(raw),
  F64: (raw, out) => out.set(view(Float64Array, raw, 8)),
  F16: (raw, out) => decodeF16(view(Uint16Array, raw, 2), out),
  BF16: (raw, out) => decodeBF16(view(Uint16Array, raw, 2), out),
  BOOL: (raw, out) => { for (let i = 0; i < raw.length; i++) out[i] = raw[i] ? 1 : 0; },
  U8: (raw, out) => out.set(raw),
  I8: (raw, out) => out.set(view(Int8Array, raw, 1)),
  I16: (raw, out) => out.set(view(Int16Array, raw, 2)),
  U16: (raw, out) => out.set(view(Uint16Array, raw, 2)),
  I32: (raw, out) => out.set(view(Int32Array, raw, 4)),
  U32: (raw, out) => out.set(view(Uint32Array, raw, 4)),
  I64: (raw, out) => { const a = view(BigInt64Array, raw, 8); for (let i = 0; i < a.length; i++) out[i] = Number(a[i]); },
  U64: (raw, out) => { const a = view(BigUint64Array, raw, 8); for (let i = 0; i < a.length; i++) out[i] = Number(a[i]); },
};

/** The Rust reader's limit; a larger "length" is almost surely not a safetensors file. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';

export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** [begin, end) in bytes, relative to the first data byte. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Entries in data order. */
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** File offset of the first data byte: 8 + header length. */
  dataStart: number;
}

export interface SafetensorsContents {
  /** float32 tensors in data order. */
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
  /** The dtype each tensor had in the file. */
  dtypes: Map<string, string>;
}

export type TensorDict = Map<string, Tensor> | Record<string, Tensor>;

function fail(file: string, problem: string): never {
  throw new Error(`safetensors ${file}: ${problem}`);
}

const isOffset = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/** Header length from the first 8 bytes, checked against the file size. */
function headerLength(first8: Uint8Array, fileBytes: number, file: string): number {
  if (fileBytes < 8) fail(file, `truncated file: ${fileBytes} bytes, fewer than the 8-byte header length`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`);
  if (n > BigInt(fileBytes - 8)) fail(file, `truncated file: header length ${n} runs past the end of the file (${fileBytes} bytes)`);
  return Number(n);
}

/** Parse and validate the JSON header against a data section of dataBytes bytes. */
function parseHeader(bytes: Uint8Array, dataBytes: number, dataStart: number, file: string): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    fail(file, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(file, `header is not valid JSON (${(e as Error).message}): ${text.slice(0, 80)}${text.length > 80 ? '…' : ''}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail(file, 'header is not a JSON object');

  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(json as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (info === null || typeof info !== 'object' || Array.isArray(info)) fail(file, `${METADATA_KEY} is not an object`);
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') fail(file, `${METADATA_KEY}['${k}'] is not a string (got ${JSON.stringify(v)})`);
      }
      metadata = Object.fromEntries(Object.entries(info as Record<string, string>));
      continue;
    }
    const where = `tensor '${name}'`;
    if (info === null || typeof info !== 'object' || Array.isArray(info)) fail(file, `${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offs } = info as Record<string, unknown>;
    if (typeof dtype !== 'string') fail(file, `${where}: missing or non-string dtype`);
    if (!Array.isArray(shape) || !shape.every(isOffset)) fail(file, `${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isOffset)) {
      fail(file, `${where}: data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offs)}`);
    }
    if (!Object.hasOwn(DTYPE_BYTES, dtype) && !KNOWN_UNSIZED.has(dtype)) {
      fail(file, `${where}: unknown dtype '${dtype}' (safetensors dtypes: ${[...Object.keys(DTYPE_BYTES), ...KNOWN_UNSIZED].join(', ')})`);
    }
    if (!Object.hasOwn(DECODERS, dtype)) fail(file, `${where}: dtype ${dtype} is not supported (readable: ${Object.keys(DECODERS).join(', ')})`);
    const [begin, end] = offs as number[];
    if (end < begin) fail(file, `${where}: data_offsets [${begin}, ${end}] are out of order (end before begin)`);
    const need = sizeOf(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== need) {
      fail(file, `${where}: shape ${fmtShape(shape)} of ${dtype} needs ${need} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    if (end > dataBytes) fail(file, `${where}: data_offsets [${begin}, ${end}] run past the end of the data (${dataBytes} bytes)`);
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }

  // The data must be tiled exactly: sorted by offset, each tensor starts where the previous ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: SafetensorsEntry | null = null;
  for (const e of entries) {
    if (e.begin < pos) fail(file, `tensor '${e.name}' [${e.begin}, ${e.end}) overlaps tensor '${prev!.name}' [${prev!.begin}, ${prev!.end})`);
    if (e.begin > pos) fail(file, `hole of ${e.begin - pos} bytes in the data before tensor '${e.name}' (at data offset ${pos})`);
    pos = e.end;
    prev = e;
  }
  if (pos !== dataBytes) fail(file, `${dataBytes - pos} bytes of data after the last tensor are not described by the header`);
  return { entries, metadata, dataStart };
}

function checkHost(): void {
  // Typed-array views read in host order; the format is little-endian.
  if (endianness() !== 'LE') throw new Error('safetensors: big-endian hosts are not supported');
}

function toTensor(e: SafetensorsEntry, raw: Uint8Array): Tensor {
  const t = empty(e.shape);
  // Meta execution (`diffactor simulate`) reads a model's file for its shapes: nothing to store.
  if (isMetaArray(t.data)) return t;
  // The data of a file need not be aligned (the header length is arbitrary): copy when it is not.
  DECODERS[e.dtype](raw.byteOffset % 8 === 0 ? raw : new Uint8Array(raw), t.data as Float32Array);
  return t;
}

/** Decode a whole safetensors file held in memory. `file` names it in errors. */
export function decodeSafetensors(bytes: Uint8Array, file = '<bytes>'): SafetensorsContents {
  checkHost();
  const n = headerLength(bytes.subarray(0, 8), bytes.length, file);
  const dataStart = 8 + n;
  const header = parseHeader(bytes.subarray(8, dataStart), bytes.length - dataStart, dataStart, file);
  const tensors = new Map<string, Tensor>();
  const dtypes = new Map<string, string>();
  for (const e of header.entries) {
    tensors.set(e.name, toTensor(e, bytes.subarray(dataStart + e.begin, dataStart + e.end)));
    dtypes.set(e.name, e.dtype);
  }
  return { tensors, metadata: header.metadata, dtypes };
}

function readAt(fd: number, position: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  let off = 0;
  while (off < length) {
    const got = fs.readSync(fd, buf, off, length - off, position + off);
    if (got === 0) throw new Error(`unexpected end of file at byte ${position + off}`);
    off += got;
  }
  return buf;
}

function withFile<T>(file: string, fn: (fd: number, size: number) => T): T {
  const fd = fs.openSync(file, 'r');
  try {
    return fn(fd, fs.fstatSync(fd).size);
  } finally {
    fs.closeSync(fd);
  }
}

function readHeaderFd(fd: number, size: number, file: string): SafetensorsHeader {
  const n = headerLength(readAt(fd, 0, Math.min(8, size)), size, file);
  return parseHeader(readAt(fd, 8, n), size - 8 - n, 8 + n, file);
}

/** The header only (names, dtypes, shapes, metadata), without reading any tensor data. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  return withFile(file, (fd, size) => readHeaderFd(fd, size, file));
}

/** Read a safetensors file into float32 tensors, one tensor at a time (never the whole file at once). */
export function readSafetensors(file: string): SafetensorsContents {
  checkHost();
  return withFile(file, (fd, size) => {
    const header = readHeaderFd(fd, size, file);
    const tensors = new Map<string, Tensor>();
    const dtypes = new Map<string, string>();
    for (const e of header.entries) {
      tensors.set(e.name, toTensor(e, readAt(fd, header.dataStart + e.begin, e.end - e.begin)));
      dtypes.set(e.name, e.dtype);
    }
    return { tensors, metadata: header.metadata, dtypes };
  });
}

/** False for strings with lone surrogates, which UTF-8 (and the Rust reader) cannot carry. */
const wellFormed = (s: string): boolean => Buffer.from(s, 'utf8').toString('utf8') === s;

/** UTF-8 byte order, as the Rust writer sorts (JS's default sort is UTF-16 order). */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The file as chunks: 8-byte length, padded header, then each tensor's float32 bytes (views of the
 * tensors' own storage where they are float32, so a large checkpoint is not copied).
 */
function encodeChunks(tensors: TensorDict, metadata?: Record<string, string>): Uint8Array[] {
  checkHost();
  const list = (tensors instanceof Map ? [...tensors] : Object.entries(tensors)).sort((x, y) => byteOrder(x[0], y[0]));
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    const meta = Object.entries(metadata).sort((x, y) => byteOrder(x[0], y[0]));
    for (const [k, v] of meta) {
      if (typeof v !== 'string') throw new Error(`safetensors: metadata '${k}' must be a string, got ${typeof v}`);
      if (!wellFormed(k) || !wellFormed(v)) throw new Error(`safetensors: metadata '${k}' is not well-formed Unicode`);
    }
    // Built by hand: a JS object would move integer-like keys to the front.
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${meta.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of list) {
    if (name === METADATA_KEY) throw new Error(`safetensors: '${METADATA_KEY}' is reserved and cannot name a tensor`);
    if (!wellFormed(name)) throw new Error(`safetensors: tensor name ${JSON.stringify(name)} is not well-formed Unicode`);
    if (t.disposed) throw new Error(`safetensors: tensor '${name}' was released by tidy()`);
    const f32 = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
    const bytes = new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
    parts.push(`${JSON.stringify(name)}:{"dtype":"F32","shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${offset + bytes.length}]}`);
    chunks.push(bytes);
    offset += bytes.length;
  }
  let header = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const pad = (8 - (header.length % 8)) % 8;
  if (pad) header = Buffer.concat([header, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return [len, header, ...chunks];
}

/** The bytes of a safetensors file holding `tensors` as F32. */
export function encodeSafetensors(tensors: TensorDict, metadata?: Record<string, string>): Uint8Array {
  return Buffer.concat(encodeChunks(tensors, metadata));
}

/** Write `tensors` as F32 safetensors, atomically (an existing file survives a failed write). */
export function writeSafetensors(file: string, tensors: TensorDict, metadata?: Record<string, string>): void {
  writeFileAtomic(file, encodeChunks(tensors, metadata));
}
