// Safetensors: an 8-byte little-endian header length, a JSON header, then the raw tensor bytes.
// Reading validates the whole header against the file before any tensor is touched, and reads
// tensors one at a time with positioned reads, so a 14 GB checkpoint never sits in memory.

import { open, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { decodeBf16, decodeHalf, encodeBf16, encodeHalf } from './float16.js';
import { writeFileAtomic } from './files.js';

/** Bytes per element of every dtype the safetensors format defines. */
const DTYPE_SIZE = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
} as const;
export type SafetensorsDtype = keyof typeof DTYPE_SIZE;
/** The dtypes weights may have; they are converted to float32 on read. */
export const FLOAT_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type FloatDtype = (typeof FLOAT_DTYPES)[number];

const MAX_HEADER_BYTES = 100 * 1024 * 1024; // the format's own limit

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  file: string;
  /** Absolute byte offset of the tensor's data in `file`. */
  offset: number;
  byteLength: number;
}

export interface SafetensorsFile {
  path: string;
  metadata: Record<string, string>;
  tensors: TensorEntry[];
}

export function isFloatDtype(dtype: SafetensorsDtype): dtype is FloatDtype {
  return (FLOAT_DTYPES as readonly string[]).includes(dtype);
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Parses and validates a safetensors header: sizes, dtypes, offsets in range, contiguous and covering the file exactly. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsFile> {
  const fail = (why: string): never => {
    throw new SafetensorsError(`${path}: ${why}`);
  };
  const size = await stat(path).then(
    (s) => s.size,
    (err: Error) => fail(`cannot read (${err.message})`),
  );
  if (size < 8) fail(`file is ${size} bytes, too short for a safetensors header`);
  const fh = await open(path, 'r');
  let json: string;
  try {
    const lenBuf = Buffer.alloc(8);
    await fh.read(lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > MAX_HEADER_BYTES)
      fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`);
    if (8 + headerLen > size) fail(`header length ${headerLen} runs past the end of the ${size}-byte file (truncated?)`);
    const headerBuf = Buffer.alloc(headerLen);
    await fh.read(headerBuf, 0, headerLen, 8);
    json = headerBuf.toString('utf8');
    return parseHeader(path, json, 8 + headerLen, size, fail);
  } finally {
    await fh.close();
  }
}

function parseHeader(path: string, json: string, dataStart: number, fileSize: number, fail: (why: string) => never): SafetensorsFile {
  let header: unknown;
  try {
    header = JSON.parse(json);
  } catch (err) {
    return fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(header)) return fail('header is not a JSON object');
  let metadata: Record<string, string> = {};
  const tensors: TensorEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isPlainObject(value) || !Object.values(value).every((v) => typeof v === 'string'))
        fail('__metadata__ must map strings to strings');
      metadata = value as Record<string, string>;
      continue;
    }
    tensors.push(parseEntry(path, name, value, dataStart, fail));
  }
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  let expected = dataStart;
  for (const t of byOffset) {
    if (t.offset < expected)
      fail(`tensor "${t.name}" overlaps the previous tensor (starts at ${t.offset - dataStart}, previous ends at ${expected - dataStart})`);
    if (t.offset > expected)
      fail(`gap before tensor "${t.name}" (starts at ${t.offset - dataStart}, previous ends at ${expected - dataStart})`);
    expected = t.offset + t.byteLength;
  }
  if (expected > fileSize) fail(`file is truncated: tensor data needs ${expected} bytes, the file has ${fileSize}`);
  if (expected < fileSize) fail(`${fileSize - expected} unexpected trailing bytes after the last tensor`);
  return { path, metadata, tensors };
}

function parseEntry(path: string, name: string, value: unknown, dataStart: number, fail: (why: string) => never): TensorEntry {
  if (!isPlainObject(value)) return fail(`tensor "${name}": entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_SIZE, dtype)) {
    fail(`tensor "${name}": unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_SIZE).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) fail(`tensor "${name}": shape must be an array of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    fail(`tensor "${name}": data_offsets must be [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as number[];
  const expectedBytes = elementCount(shape as number[]) * DTYPE_SIZE[dtype as SafetensorsDtype];
  if (end - begin !== expectedBytes) {
    fail(
      `tensor "${name}": shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${expectedBytes} bytes, data_offsets span ${end - begin}`,
    );
  }
  return {
    name,
    dtype: dtype as SafetensorsDtype,
    shape: shape as number[],
    file: path,
    offset: dataStart + begin,
    byteLength: end - begin,
  };
}

/** Reads one floating-point tensor and converts it to float32. */
export async function readTensorF32(entry: TensorEntry): Promise<Float32Array> {
  if (!isFloatDtype(entry.dtype)) {
    throw new SafetensorsError(
      `${entry.file}: tensor "${entry.name}" has dtype ${entry.dtype}; weights must be ${FLOAT_DTYPES.join(', ')}`,
    );
  }
  const bytes = await readBytes(entry);
  const n = elementCount(entry.shape);
  if (entry.dtype === 'F32') return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  return entry.dtype === 'F16' ? decodeHalf(halves) : decodeBf16(halves);
}

async function readBytes(entry: TensorEntry): Promise<Uint8Array> {
  const bytes = new Uint8Array(new ArrayBuffer(entry.byteLength)); // fresh buffer: aligned for typed-array views
  const fh = await open(entry.file, 'r');
  try {
    const { bytesRead } = await fh.read(bytes, 0, entry.byteLength, entry.offset);
    if (bytesRead !== entry.byteLength)
      throw new SafetensorsError(`${entry.file}: tensor "${entry.name}" is truncated (read ${bytesRead} of ${entry.byteLength} bytes)`);
  } finally {
    await fh.close();
  }
  return bytes;
}

/** All tensors of a checkpoint folder: `model.safetensors`, or the shards listed in `model.safetensors.index.json`. */
export class TensorSet {
  private constructor(
    readonly files: string[],
    private readonly entries: Map<string, TensorEntry>,
  ) {}

  static async openFolder(dir: string): Promise<TensorSet> {
    const indexPath = join(dir, 'model.safetensors.index.json');
    if (await exists(indexPath)) return TensorSet.openSharded(dir, indexPath);
    const single = join(dir, 'model.safetensors');
    if (!(await exists(single))) throw new SafetensorsError(`${dir}: no model.safetensors or model.safetensors.index.json`);
    const file = await readSafetensorsHeader(single);
    return new TensorSet([single], new Map(file.tensors.map((t) => [t.name, t])));
  }

  private static async openSharded(dir: string, indexPath: string): Promise<TensorSet> {
    const fail = (why: string): never => {
      throw new SafetensorsError(`${indexPath}: ${why}`);
    };
    let index: unknown;
    try {
      index = JSON.parse(await readFile(indexPath, 'utf8'));
    } catch (err) {
      return fail(`not valid JSON (${(err as Error).message})`);
    }
    const weightMap = isPlainObject(index) ? (index as { weight_map?: unknown }).weight_map : undefined;
    if (!isPlainObject(weightMap) || !Object.values(weightMap).every((f) => typeof f === 'string')) {
      fail('weight_map must map tensor names to shard file names');
    }
    const shardOf = weightMap as Record<string, string>;
    const shardNames = [...new Set(Object.values(shardOf))].sort();
    for (const shard of shardNames) if (shard !== basename(shard)) fail(`shard "${shard}" must be a file name in the same folder`);
    const entries = new Map<string, TensorEntry>();
    const files = shardNames.map((s) => join(dir, s));
    for (const file of files) {
      const header = await readSafetensorsHeader(file);
      for (const t of header.tensors) if (Object.hasOwn(shardOf, t.name) && shardOf[t.name] === basename(file)) entries.set(t.name, t);
    }
    for (const [name, shard] of Object.entries(shardOf)) {
      if (!entries.has(name)) fail(`tensor "${name}" is listed in shard ${shard} but that file does not contain it`);
    }
    return new TensorSet(files, entries);
  }

  get(name: string): TensorEntry | undefined {
    return this.entries.get(name);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  async readF32(name: string): Promise<Float32Array> {
    const entry = this.entries.get(name);
    if (!entry) throw new SafetensorsError(`tensor "${name}" is not in the checkpoint (${this.files.join(', ')})`);
    return readTensorF32(entry);
  }
}

export interface TensorToWrite {
  dtype: FloatDtype;
  shape: number[];
  /** Values; encoded to `dtype` on write. */
  data: Float32Array;
}

/** A tensor written in pieces: `chunks()` yields its values in order, each piece encoded and written before the next is made. */
export interface StreamedTensor {
  dtype: FloatDtype;
  shape: number[];
  chunks(): Iterable<Float32Array>;
}

/** Writes a safetensors file atomically (tensors in the given order, header padded to 8 bytes like the reference writer). */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const streamed = Object.entries(tensors).map(([name, t]): [string, StreamedTensor] => {
    if (t.data.length !== elementCount(t.shape))
      throw new SafetensorsError(`${path}: tensor "${name}" has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    return [name, { dtype: t.dtype, shape: t.shape, chunks: () => [t.data] }];
  });
  await writeSafetensorsStreamed(path, streamed, metadata);
}

/**
 * Writes a safetensors file atomically with at most one chunk of values in memory at a time: the
 * header is known from the shapes alone, so the data follows tensor by tensor, chunk by chunk.
 */
export async function writeSafetensorsStreamed(
  path: string,
  tensors: Iterable<[string, StreamedTensor]>,
  metadata?: Record<string, string>,
): Promise<void> {
  const list = [...tensors];
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, t] of list) {
    const bytes = elementCount(t.shape) * DTYPE_SIZE[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  await writeFileAtomic(path, streamBytes(path, Buffer.concat([len, Buffer.from(json)]), list));
}

async function* streamBytes(path: string, head: Uint8Array, tensors: [string, StreamedTensor][]): AsyncIterable<Uint8Array> {
  yield head;
  for (const [name, t] of tensors) {
    let written = 0;
    for (const chunk of t.chunks()) {
      written += chunk.length;
      yield encodeTensor({ ...t, data: chunk });
    }
    if (written !== elementCount(t.shape))
      throw new SafetensorsError(`${path}: tensor "${name}" has ${written} values for shape [${t.shape.join(', ')}]`);
  }
}

function encodeTensor(t: TensorToWrite): Uint8Array {
  const typed = t.dtype === 'F32' ? t.data : t.dtype === 'F16' ? encodeHalf(t.data) : encodeBf16(t.data);
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
