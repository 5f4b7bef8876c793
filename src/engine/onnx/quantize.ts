// Block-wise weight quantization in the layout of ONNX Runtime's MatMulNBits (com.microsoft):
// for W^T with N output rows and K inputs, each row is cut into blocks of `blockSize` inputs;
// a block stores unsigned codes q, one float scale and one zero point z, and w = (q - z) * scale.
// 4-bit codes pack two per byte, the even element in the low nibble; so do 4-bit zero points.

export interface QuantizedMatrix {
  /** [N, blocksPerRow, blockSize * bits / 8] */
  codes: Uint8Array;
  /** [N * blocksPerRow] */
  scales: Float32Array;
  /** [N * ceil(blocksPerRow * bits / 8)] */
  zeroPoints: Uint8Array;
  blocksPerRow: number;
}

/** Quantizes a PyTorch Linear weight ([N = out, K = in], row-major); the range of each block includes 0. */
export function quantizeBlockwise(weight: Float32Array, n: number, k: number, bits: 4 | 8, blockSize: number): QuantizedMatrix {
  const blocksPerRow = Math.ceil(k / blockSize);
  const maxCode = (1 << bits) - 1;
  const blockBytes = (blockSize * bits) / 8;
  const zeroBytesPerRow = Math.ceil((blocksPerRow * bits) / 8);
  const codes = new Uint8Array(n * blocksPerRow * blockBytes);
  const scales = new Float32Array(n * blocksPerRow);
  const zeroPoints = new Uint8Array(n * zeroBytesPerRow);
  const put = (buffer: Uint8Array, byteBase: number, index: number, value: number) => {
    if (bits === 8) buffer[byteBase + index] = value;
    else buffer[byteBase + (index >> 1)] |= index & 1 ? value << 4 : value;
  };

  for (let row = 0; row < n; row++) {
    for (let block = 0; block < blocksPerRow; block++) {
      const start = row * k + block * blockSize;
      const end = row * k + Math.min(k, (block + 1) * blockSize);
      let lo = 0;
      let hi = 0;
      for (let i = start; i < end; i++) {
        lo = Math.min(lo, weight[i]);
        hi = Math.max(hi, weight[i]);
      }
      const scale = Math.fround((hi - lo) / maxCode) || 1; // an all-zero block: any scale decodes it exactly
      const zero = clamp(Math.round(-lo / scale), 0, maxCode);
      scales[row * blocksPerRow + block] = scale;
      put(zeroPoints, row * zeroBytesPerRow, block, zero);
      const base = (row * blocksPerRow + block) * blockBytes;
      for (let i = start; i < end; i++) put(codes, base, i - start, clamp(Math.round(weight[i] / scale) + zero, 0, maxCode));
      // Padding past K stays code 0; MatMulNBits ignores inputs beyond K.
    }
  }
  return { codes, scales, zeroPoints, blocksPerRow };
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
