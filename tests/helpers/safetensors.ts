// A deliberately small safetensors reader for the test helpers. The reference forward pass reads
// checkpoints through this file, never through src/engine, so a bug in the engine's reader cannot
// hide itself in the parity tests. (Writing uses the engine's writeSafetensors: one writer; the
// fp16/bf16 encoders here stay as the independent check of what it wrote.)
//
// Format: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}
// (offsets relative to the end of the header), then the raw little-endian tensor bytes.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

/** A tensor held in float64 (the reference's working precision), row-major. */
export interface Tensor64 {
  shape: number[];
  data: Float64Array;
}

// ---- float16 / bfloat16 bit conversions (round to nearest even) ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function float32ToBf16Bits(value: number): number {
  f32[0] = value;
  const bits = u32[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return 0x7fc0; // NaN
  const roundingBias = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + roundingBias) >>> 16) & 0xffff;
}

export function bf16BitsToFloat(bits: number): number {
  u32[0] = bits << 16;
  return f32[0];
}

export function float32ToFp16Bits(value: number): number {
  f32[0] = value;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> infinity
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mantissa |= 0x800000; // implicit leading one, then shift into the subnormal range
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rounded = (mantissa + half - 1 + ((mantissa >>> shift) & 1)) >>> shift;
    return sign | rounded;
  }
  const rounded = mantissa + 0xfff + ((mantissa >>> 13) & 1); // round to nearest even at bit 13
  if (rounded & 0x800000) {
    // mantissa overflowed into the exponent
    return e + 1 >= 0x1f ? sign | 0x7c00 : sign | ((e + 1) << 10);
  }
  return sign | (e << 10) | (rounded >>> 13);
}

export function fp16BitsToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

// ---- reading ----

function decodeTensor(bytes: Buffer, dtype: string, count: number): Float64Array {
  const out = new Float64Array(count);
  if (dtype === 'F32') {
    for (let i = 0; i < count; i++) out[i] = bytes.readFloatLE(i * 4);
  } else if (dtype === 'F16') {
    for (let i = 0; i < count; i++) out[i] = fp16BitsToFloat(bytes.readUInt16LE(i * 2));
  } else if (dtype === 'BF16') {
    for (let i = 0; i < count; i++) out[i] = bf16BitsToFloat(bytes.readUInt16LE(i * 2));
  } else {
    throw new Error(`reference reader: unsupported dtype ${dtype}`);
  }
  return out;
}

/** Reads every tensor of one .safetensors file into float64. */
export function readSafetensorsFile(path: string): Map<string, Tensor64> {
  const file = readFileSync(path);
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, Tensor64>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = info.data_offsets;
    const count = info.shape.reduce((a, b) => a * b, 1);
    tensors.set(name, { shape: info.shape, data: decodeTensor(file.subarray(dataStart + begin, dataStart + end), info.dtype, count) });
  }
  return tensors;
}

/** Reads a checkpoint folder's weights: model.safetensors, or the shards named by model.safetensors.index.json. */
export function readCheckpointWeights(dir: string): Map<string, Tensor64> {
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (!existsSync(indexPath)) return readSafetensorsFile(join(dir, 'model.safetensors'));
  const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map: Record<string, string> };
  const weights = new Map<string, Tensor64>();
  for (const shard of new Set(Object.values(index.weight_map))) {
    for (const [name, tensor] of readSafetensorsFile(join(dir, shard))) weights.set(name, tensor);
  }
  return weights;
}
