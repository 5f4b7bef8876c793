// GGUF, llama.cpp's model file: a header of typed metadata and tensor descriptions, then the tensor data.
// Layout (versions 2 and 3, little-endian), as llama.cpp's gguf-py/gguf/constants.py and gguf_reader.py read it:
//   "GGUF" u32 version, u64 tensor count, u64 metadata count
//   metadata: string key, u32 value type, value (arrays: u32 element type, u64 count, elements)
//   tensors:  string name, u32 n_dims, u64 dims[n_dims] (innermost first), u32 ggml type, u64 offset
//   data:     at the header's end rounded up to general.alignment (32), each tensor at its offset from there
// Everything is bounded by the file's size before it is allocated, so a hostile header cannot ask for
// more memory than the file holds.

import { open, type FileHandle } from 'node:fs/promises';
import { dequantize, GGML_TYPES, type GgmlType, tensorBytes } from './ggml-quants.js';

export class GgufError extends Error {
  override name = 'GgufError';
}

export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufTensor {
  name: string;
  type: GgmlType;
  /** Dimensions outermost first, as PyTorch and safetensors write them (GGUF stores them innermost first). */
  shape: number[];
  /** Absolute byte offset in the file. */
  offset: number;
  byteLength: number;
}

export interface GgufFile {
  path: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensor>;
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const MAX_DIMS = 4;
const MAX_ELEMENTS = 2 ** 40;
/** No real key or token is longer; a billion-character string is refused before it is read. */
const MAX_STRING_BYTES = 16 << 20;

enum ValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

const FIXED_SIZE: Partial<Record<ValueType, number>> = {
  [ValueType.UINT8]: 1,
  [ValueType.INT8]: 1,
  [ValueType.BOOL]: 1,
  [ValueType.UINT16]: 2,
  [ValueType.INT16]: 2,
  [ValueType.UINT32]: 4,
  [ValueType.INT32]: 4,
  [ValueType.FLOAT32]: 4,
  [ValueType.UINT64]: 8,
  [ValueType.INT64]: 8,
  [ValueType.FLOAT64]: 8,
};

/** Sequential reads through a file handle, a chunk at a time, never past the file's end. */
class Cursor {
  private buffer = Buffer.alloc(0);
  private start = 0; // file offset of buffer[0]
  pos = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly fail: (why: string) => never,
  ) {}

  get remaining(): number {
    return this.size - this.pos;
  }

  private async take(n: number): Promise<Buffer> {
    if (n > this.remaining) this.fail(`the file ends inside its header at offset ${this.pos} (truncated?)`);
    const end = this.pos + n;
    if (this.pos < this.start || end > this.start + this.buffer.length) {
      const length = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
      this.buffer = Buffer.alloc(length);
      const { bytesRead } = await this.fh.read(this.buffer, 0, length, this.pos);
      if (bytesRead < n) this.fail(`the file ends inside its header (offset ${this.pos})`);
      this.start = this.pos;
    }
    const slice = this.buffer.subarray(this.pos - this.start, end - this.start);
    this.pos = end;
    return slice;
  }

  async u32(): Promise<number> {
    return (await this.take(4)).readUInt32LE(0);
  }

  /** A u64 that must be a safe integer (a count, size or offset). */
  async count(what: string): Promise<number> {
    const v = (await this.take(8)).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} ${v} is absurd`);
    return Number(v);
  }

  async string(what: string): Promise<string> {
    const length = await this.count(`the length of ${what}`);
    if (length > MAX_STRING_BYTES) this.fail(`${what} claims ${length} bytes (at most ${MAX_STRING_BYTES} are allowed)`);
    if (length > this.remaining) this.fail(`${what} claims ${length} bytes, but the file ends ${this.remaining} bytes later (truncated?)`);
    return (await this.take(length)).toString('utf8');
  }

  async value(type: ValueType, what: string): Promise<GgufValue> {
    switch (type) {
      case ValueType.STRING:
        return this.string(what);
      case ValueType.ARRAY:
        return this.array(what);
      case ValueType.BOOL:
        return (await this.take(1))[0] !== 0;
      case ValueType.UINT64:
      case ValueType.INT64: {
        const b = await this.take(8);
        const v = type === ValueType.UINT64 ? b.readBigUInt64LE(0) : b.readBigInt64LE(0);
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
    }
    const size = FIXED_SIZE[type];
    if (size === undefined) this.fail(`${what} has an unknown value type ${type}`);
    const b = await this.take(size);
    switch (type) {
      case ValueType.UINT8:
        return b.readUInt8(0);
      case ValueType.INT8:
        return b.readInt8(0);
      case ValueType.UINT16:
        return b.readUInt16LE(0);
      case ValueType.INT16:
        return b.readInt16LE(0);
      case ValueType.UINT32:
        return b.readUInt32LE(0);
      case ValueType.INT32:
        return b.readInt32LE(0);
      case ValueType.FLOAT32:
        return b.readFloatLE(0);
      default:
        return b.readDoubleLE(0);
    }
  }

  private async array(what: string): Promise<GgufValue[]> {
    const type = (await this.u32()) as ValueType;
    const length = await this.count(`the length of ${what}`);
    // Every element takes at least a byte (a string at least its 8-byte length): a count beyond that is a lie.
    const least = type === ValueType.STRING ? 8 : (FIXED_SIZE[type] ?? 1);
    if (length * least > this.remaining) this.fail(`${what} claims ${length} elements, more than the file holds`);
    const out: GgufValue[] = new Array(length);
    for (let i = 0; i < length; i++) out[i] = await this.value(type, `${what}[${i}]`);
    return out;
  }
}

/** Reads a GGUF file's header: metadata and tensor descriptions, every one checked against the file. */
export async function readGgufHeader(path: string): Promise<GgufFile> {
  const fail = (why: string): never => {
    throw new GgufError(`${path}: ${why}`);
  };
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) =>
    fail(e.code === 'ENOENT' ? 'does not exist' : `cannot be read (${e.code ?? e.message})`),
  );
  try {
    const size = (await fh.stat()).size;
    const cur = new Cursor(fh, size, fail);
    if (size < 24 || (await cur.u32()) !== MAGIC) fail('not a GGUF file (it does not start with "GGUF")');
    const version = await cur.u32();
    if (version !== 2 && version !== 3) fail(`GGUF version ${version} is not supported (versions 2 and 3 are)`);
    const tensorCount = await cur.count('the tensor count');
    const kvCount = await cur.count('the metadata count');
    if (tensorCount > size / 24 || kvCount > size / 12) fail(`the header claims ${tensorCount} tensors and ${kvCount} metadata entries`);

    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = await cur.string(`metadata key ${i}`);
      metadata.set(key, await cur.value((await cur.u32()) as ValueType, `metadata "${key}"`));
    }
    const infos: { name: string; type: GgmlType; shape: number[]; relative: number }[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = await cur.string(`tensor name ${i}`);
      const nDims = await cur.u32();
      if (nDims < 1 || nDims > MAX_DIMS) fail(`tensor "${name}" has ${nDims} dimensions (1 to ${MAX_DIMS} supported)`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(await cur.count(`a dimension of tensor "${name}"`));
      const typeId = await cur.u32();
      const type = GGML_TYPES[typeId]?.name;
      if (!type) fail(`tensor "${name}" has ggml type ${typeId}, which is not supported (supported: ${supportedTypes()})`);
      const elements = dims.reduce((a, b) => a * b, 1);
      if (dims.some((d) => d < 1) || elements > MAX_ELEMENTS) fail(`tensor "${name}" has absurd dimensions [${dims.join(', ')}]`);
      infos.push({ name, type, shape: dims.reverse(), relative: await cur.count(`the offset of tensor "${name}"`) });
    }
    const alignment = metadata.get('general.alignment') ?? 32;
    if (typeof alignment !== 'number' || alignment < 1 || alignment > 1 << 20 || (alignment & (alignment - 1)) !== 0)
      fail(`general.alignment ${String(alignment)} is not a power of two`);
    const dataStart = Math.ceil(cur.pos / (alignment as number)) * (alignment as number);

    const tensors = new Map<string, GgufTensor>();
    for (const { name, type, shape, relative } of infos) {
      if (tensors.has(name)) fail(`tensor "${name}" appears twice`);
      const byteLength = tensorBytes(type, shape, (why) => fail(`tensor "${name}": ${why}`));
      const offset = dataStart + relative;
      if (offset + byteLength > size)
        fail(`tensor "${name}" claims bytes ${offset}..${offset + byteLength}, beyond the file's end at ${size} (truncated?)`);
      tensors.set(name, { name, type, shape, offset, byteLength });
    }
    return { path, version, metadata, tensors };
  } finally {
    await fh.close();
  }
}

function supportedTypes(): string {
  return Object.values(GGML_TYPES)
    .map((t) => t.name)
    .join(', ');
}

/** The raw bytes of one tensor, in a fresh (aligned) buffer. */
export async function readGgufTensorBytes(file: GgufFile, tensor: GgufTensor): Promise<Uint8Array> {
  const bytes = new Uint8Array(new ArrayBuffer(tensor.byteLength));
  const fh = await open(file.path, 'r');
  try {
    const { bytesRead } = await fh.read(bytes, 0, tensor.byteLength, tensor.offset);
    if (bytesRead !== tensor.byteLength) throw new GgufError(`${file.path}: tensor "${tensor.name}" is truncated`);
  } finally {
    await fh.close();
  }
  return bytes;
}

/** One tensor as float32, dequantized exactly as gguf-py's quants.dequantize does. */
export async function readGgufTensorF32(file: GgufFile, tensor: GgufTensor): Promise<Float32Array> {
  const bytes = await readGgufTensorBytes(file, tensor);
  return dequantize(
    tensor.type,
    bytes,
    tensor.shape.reduce((a, b) => a * b, 1),
  );
}

/** Typed metadata accessors whose errors name the file and the key. */
export class GgufMetadata {
  constructor(
    private readonly file: GgufFile,
    private readonly prefix = '',
  ) {}

  private fail(key: string, why: string): never {
    throw new GgufError(`${this.file.path}: metadata "${this.prefix}${key}" ${why}`);
  }

  has(key: string): boolean {
    return this.file.metadata.has(this.prefix + key);
  }

  raw(key: string): GgufValue | undefined {
    return this.file.metadata.get(this.prefix + key);
  }

  string(key: string): string;
  string(key: string, fallback: string | null): string | null;
  string(key: string, fallback?: string | null): string | null {
    const v = this.raw(key);
    if (v === undefined) return fallback === undefined ? this.fail(key, 'is missing') : fallback;
    return typeof v === 'string' ? v : this.fail(key, `must be a string, not ${JSON.stringify(v)}`);
  }

  number(key: string): number;
  number(key: string, fallback: number | null): number | null;
  number(key: string, fallback?: number | null): number | null {
    const v = this.raw(key);
    if (v === undefined) return fallback === undefined ? this.fail(key, 'is missing') : fallback;
    return typeof v === 'number' && Number.isFinite(v) ? v : this.fail(key, `must be a number, not ${String(v)}`);
  }

  count(key: string, fallback?: number): number {
    const v = fallback === undefined ? this.number(key) : (this.number(key, fallback) as number);
    return Number.isInteger(v) && v > 0 && v < 1 << 30 ? v : this.fail(key, `must be a positive integer, not ${v}`);
  }

  boolean(key: string, fallback: boolean | null): boolean | null {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    return typeof v === 'boolean' ? v : this.fail(key, `must be true or false, not ${String(v)}`);
  }

  strings(key: string): string[] | null {
    const v = this.raw(key);
    if (v === undefined) return null;
    return Array.isArray(v) && v.every((s) => typeof s === 'string') ? (v as string[]) : this.fail(key, 'must be a list of strings');
  }

  numbers(key: string): number[] | null {
    const v = this.raw(key);
    if (v === undefined) return null;
    return Array.isArray(v) && v.every((s) => typeof s === 'number') ? (v as number[]) : this.fail(key, 'must be a list of numbers');
  }
}
