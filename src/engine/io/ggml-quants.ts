// ggml's tensor types and their dequantization, bit for bit as llama.cpp's gguf-py/gguf/quants.py computes it
// (float32 arithmetic, in its order: Math.fround after every product and sum numpy rounds).
// A block holds `blockSize` values in `typeSize` bytes; blocks run along a tensor's innermost dimension.

import { bf16ToFloat, halfToFloat } from './float16.js';

export type GgmlType = 'F32' | 'F16' | 'BF16' | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'Q4_K' | 'Q5_K' | 'Q6_K';

interface TypeInfo {
  name: GgmlType;
  blockSize: number;
  typeSize: number;
}

const QK_K = 256;

/** The supported types by their ggml id (gguf-py's GGMLQuantizationType and GGML_QUANT_SIZES). */
export const GGML_TYPES: Record<number, TypeInfo> = {
  0: { name: 'F32', blockSize: 1, typeSize: 4 },
  1: { name: 'F16', blockSize: 1, typeSize: 2 },
  2: { name: 'Q4_0', blockSize: 32, typeSize: 2 + 16 },
  3: { name: 'Q4_1', blockSize: 32, typeSize: 2 + 2 + 16 },
  6: { name: 'Q5_0', blockSize: 32, typeSize: 2 + 4 + 16 },
  7: { name: 'Q5_1', blockSize: 32, typeSize: 2 + 2 + 4 + 16 },
  8: { name: 'Q8_0', blockSize: 32, typeSize: 2 + 32 },
  12: { name: 'Q4_K', blockSize: QK_K, typeSize: 2 + 2 + 12 + QK_K / 2 },
  13: { name: 'Q5_K', blockSize: QK_K, typeSize: 2 + 2 + 12 + QK_K / 8 + QK_K / 2 },
  14: { name: 'Q6_K', blockSize: QK_K, typeSize: QK_K / 2 + QK_K / 4 + QK_K / 16 + 2 },
  30: { name: 'BF16', blockSize: 1, typeSize: 2 },
};

const BY_NAME = new Map(Object.values(GGML_TYPES).map((t) => [t.name, t]));

export function ggmlTypeInfo(type: GgmlType): TypeInfo {
  return BY_NAME.get(type)!;
}

/** Bytes of a tensor of `shape` (outermost first); its rows must be whole blocks. */
export function tensorBytes(type: GgmlType, shape: readonly number[], fail: (why: string) => never): number {
  const { blockSize, typeSize } = ggmlTypeInfo(type);
  const row = shape[shape.length - 1];
  if (row % blockSize !== 0) fail(`rows of ${row} values are not whole ${type} blocks of ${blockSize}`);
  return (shape.reduce((a, b) => a * b, 1) / blockSize) * typeSize;
}

const f = Math.fround;

/** `count` float32 values from a tensor's bytes. */
export function dequantize(type: GgmlType, bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const half = (at: number) => halfToFloat(view.getUint16(at, true));
  const { blockSize, typeSize } = ggmlTypeInfo(type);
  const blocks = count / blockSize;
  switch (type) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = half(2 * i);
      return out;
    case 'BF16':
      for (let i = 0; i < count; i++) out[i] = bf16ToFloat(view.getUint16(2 * i, true));
      return out;
  }
  for (let b = 0; b < blocks; b++) {
    const at = b * typeSize;
    const o = b * blockSize;
    switch (type) {
      case 'Q8_0': {
        const d = half(at);
        for (let i = 0; i < 32; i++) out[o + i] = f(view.getInt8(at + 2 + i) * d);
        break;
      }
      case 'Q4_0':
      case 'Q4_1': {
        // 16 bytes: value i in the low nibble of byte i, value i + 16 in its high nibble.
        const withMin = type === 'Q4_1';
        const d = half(at);
        const m = withMin ? half(at + 2) : 0;
        const qs = at + (withMin ? 4 : 2);
        for (let i = 0; i < 16; i++) {
          const byte = bytes[qs + i];
          out[o + i] = withMin ? f(f(d * (byte & 15)) + m) : f(d * ((byte & 15) - 8));
          out[o + i + 16] = withMin ? f(f(d * (byte >> 4)) + m) : f(d * ((byte >> 4) - 8));
        }
        break;
      }
      case 'Q5_0':
      case 'Q5_1': {
        // As Q4, plus a fifth bit per value: bit i of the u32 qh.
        const withMin = type === 'Q5_1';
        const d = half(at);
        const m = withMin ? half(at + 2) : 0;
        const qh = view.getUint32(at + (withMin ? 4 : 2), true);
        const qs = at + (withMin ? 8 : 6);
        for (let i = 0; i < 32; i++) {
          const nibble = i < 16 ? bytes[qs + i] & 15 : bytes[qs + i - 16] >> 4;
          const q = nibble | (((qh >>> i) & 1) << 4);
          out[o + i] = withMin ? f(f(d * q) + m) : f(d * (q - 16));
        }
        break;
      }
      case 'Q4_K':
      case 'Q5_K':
        dequantizeQ45K(bytes, view, at, out, o, type === 'Q5_K');
        break;
      case 'Q6_K':
        dequantizeQ6K(bytes, view, at, out, o);
        break;
    }
  }
  return out;
}

/** Q4_K's 12 bytes of packed 6-bit scales and mins for its 8 sub-blocks of 32 (gguf-py Q4_K.get_scale_min). */
function scaleMin(bytes: Uint8Array, at: number, s: number): [number, number] {
  if (s < 4) return [bytes[at + s] & 63, bytes[at + 4 + s] & 63];
  const md = bytes[at + 8 + s - 4];
  return [(md & 15) | ((bytes[at + s - 4] >> 2) & 48), (md >> 4) | ((bytes[at + s] >> 2) & 48)];
}

/** Q4_K / Q5_K super-block: d, dmin, scales, [qh: 32 bytes, bit s of byte i], qs: 4 chunks of 32 bytes, 2 sub-blocks each. */
function dequantizeQ45K(bytes: Uint8Array, view: DataView, at: number, out: Float32Array, o: number, fifthBit: boolean): void {
  const d = halfToFloat(view.getUint16(at, true));
  const dmin = halfToFloat(view.getUint16(at + 2, true));
  const qh = at + 16;
  const qs = at + 16 + (fifthBit ? 32 : 0);
  for (let s = 0; s < 8; s++) {
    const [sc, m] = scaleMin(bytes, at + 4, s);
    const scale = f(d * sc);
    const min = f(dmin * m);
    const chunk = qs + (s >> 1) * 32;
    const shift = (s & 1) * 4;
    for (let i = 0; i < 32; i++) {
      let q = (bytes[chunk + i] >> shift) & 15;
      if (fifthBit) q |= ((bytes[qh + i] >> s) & 1) << 4;
      out[o + s * 32 + i] = f(f(scale * q) - min);
    }
  }
}

/** Q6_K super-block: ql (128 bytes), qh (64), 16 int8 scales, d; value e = d * scale[e / 16] * (6-bit q - 32). */
function dequantizeQ6K(bytes: Uint8Array, view: DataView, at: number, out: Float32Array, o: number): void {
  const ql = at;
  const qh = at + 128;
  const scales = at + 192;
  const d = halfToFloat(view.getUint16(at + 208, true));
  for (let e = 0; e < QK_K; e++) {
    const half = e >> 7;
    const within = e & 127;
    const low = (bytes[ql + half * 64 + (within & 63)] >> (4 * (within >> 6))) & 15;
    const high = (bytes[qh + half * 32 + (within & 31)] >> (2 * (within >> 5))) & 3;
    const scale = f(d * view.getInt8(scales + (e >> 4)));
    out[o + e] = f(scale * ((low | (high << 4)) - 32));
  }
}

/**
 * Q4_0 and Q8_0 blocks re-laid for ONNX Runtime's MatMulNBits (onnx/quantize.ts's QuantizedMatrix) with blocks of
 * 32, exactly: Q4_0's w = d (q - 8) is MatMulNBits' (q - zero) scale with zero 8, Q8_0's w = d q is (q + 128 - 128) d.
 * `rows` x `cols` values, row-major ([out, in], as a Linear's weight), rows of whole blocks.
 */
export function toMatMulNBits(
  type: 'Q4_0' | 'Q8_0',
  bytes: Uint8Array,
  rows: number,
  cols: number,
): { codes: Uint8Array; scales: Float32Array; zeroPoints: Uint8Array; blocksPerRow: number } {
  const bits = type === 'Q4_0' ? 4 : 8;
  const { typeSize } = ggmlTypeInfo(type);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const blocksPerRow = cols / 32;
  const blocks = rows * blocksPerRow;
  const codes = new Uint8Array((blocks * 32 * bits) / 8);
  const scales = new Float32Array(blocks);
  const zeroBytesPerRow = Math.ceil((blocksPerRow * bits) / 8);
  const zeroPoints = new Uint8Array(rows * zeroBytesPerRow).fill(bits === 4 ? 0x88 : 128);
  for (let b = 0; b < blocks; b++) {
    const at = b * typeSize;
    scales[b] = halfToFloat(view.getUint16(at, true));
    if (bits === 8) {
      for (let i = 0; i < 32; i++) codes[b * 32 + i] = (view.getInt8(at + 2 + i) + 128) & 255;
      continue;
    }
    // ggml: value i in the low nibble of byte i, value i + 16 in its high one; MatMulNBits: values 2j, 2j + 1 in byte j.
    const value = (i: number) => (i < 16 ? bytes[at + 2 + i] & 15 : bytes[at + 2 + i - 16] >> 4);
    for (let j = 0; j < 16; j++) codes[b * 16 + j] = value(2 * j) | (value(2 * j + 1) << 4);
  }
  // A row whose block count is odd leaves a 4-bit zero point unused at its end: 0x88 there is harmless.
  return { codes, scales, zeroPoints, blocksPerRow };
}
