// The GGUF reader: every supported block type dequantized bit for bit as llama.cpp's gguf-py does
// (tests/fixtures/gguf/quants*.gguf, made by tools/demo-model/make_gguf_fixtures.py), and hostile files refused
// with a message that names what is wrong.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toMatMulNBits } from '../../src/engine/io/ggml-quants.js';
import { GgufError, readGgufHeader, readGgufTensorBytes, readGgufTensorF32 } from '../../src/engine/io/gguf.js';
import { ggufBytes, type TestHeader } from '../helpers/gguf-bytes.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/gguf');
const TYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'];

describe('dequantization against gguf-py', () => {
  it.each(TYPES)('%s matches quants.dequantize bit for bit', async (type) => {
    const quant = await readGgufHeader(join(FIXTURES, 'quants.gguf'));
    const expected = await readGgufHeader(join(FIXTURES, 'quants-expected.gguf'));
    const q = quant.tensors.get(type)!;
    const e = expected.tensors.get(type)!;
    expect(q.type).toBe(type);
    expect(q.shape).toEqual([3, 512]);
    expect(e.type).toBe('F32');
    const got = await readGgufTensorF32(quant, q);
    const want = await readGgufTensorF32(expected, e);
    expect(new Uint32Array(got.buffer)).toEqual(new Uint32Array(want.buffer));
    expect(want.some((v) => v !== 0)).toBe(true);
  });
});

describe('hostile files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gguf-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const tensor = { name: 'w', dims: [32n, 2n], type: 8, offset: 0n };
  const valid: TestHeader = { kv: [['general.architecture', { str: 'llama' }]], tensors: [tensor], data: new Uint8Array(68) };
  const refused = async (bytes: Uint8Array, message: RegExp) => {
    const path = join(dir, `${Math.random().toString(36).slice(2)}.gguf`);
    await writeFile(path, bytes);
    const err = await readGgufHeader(path).catch((e: Error) => e);
    expect(err).toBeInstanceOf(GgufError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(path);
  };

  it('reads the valid base file', async () => {
    const path = join(dir, 'valid.gguf');
    await writeFile(path, ggufBytes(valid));
    const file = await readGgufHeader(path);
    expect(file.metadata.get('general.architecture')).toBe('llama');
    expect(file.tensors.get('w')).toMatchObject({ type: 'Q8_0', shape: [2, 32], byteLength: 68 });
  });

  it('refuses a wrong magic', () => refused(ggufBytes({ ...valid, magic: 'GGML' }), /not a GGUF file/));
  it('refuses versions other than 2 and 3', async () => {
    await refused(ggufBytes({ ...valid, version: 1 }), /version 1 is not supported/);
    await refused(ggufBytes({ ...valid, version: 4 }), /version 4 is not supported/);
  });
  it('refuses a truncated header', () => refused(ggufBytes(valid).subarray(0, 40), /truncated\?/));
  it('refuses a truncated data section', () => refused(ggufBytes({ ...valid, data: new Uint8Array(60) }), /beyond the file's end/));
  it('refuses a tensor that claims more bytes than the file', () =>
    refused(ggufBytes({ ...valid, tensors: [{ ...tensor, offset: 1n << 40n }] }), /beyond the file's end/));
  it('refuses an unknown tensor type', () =>
    refused(ggufBytes({ ...valid, tensors: [{ ...tensor, type: 16 }] }), /ggml type 16, which is not supported \(supported: F32/));
  it('refuses absurd dimensions', async () => {
    await refused(ggufBytes({ ...valid, tensors: [{ ...tensor, dims: [32n, 1n << 40n] }] }), /absurd dimensions/);
    await refused(ggufBytes({ ...valid, tensors: [{ ...tensor, dims: [32n, 0n] }] }), /absurd dimensions/);
    await refused(ggufBytes({ ...valid, tensors: [{ ...tensor, dims: [1n, 1n, 1n, 1n, 1n] }] }), /5 dimensions/);
  });
  it('refuses rows that are not whole blocks', () =>
    refused(ggufBytes({ ...valid, tensors: [{ ...tensor, dims: [31n, 2n] }] }), /not whole Q8_0 blocks/));
  it('refuses a metadata string of a billion characters before reading it', () =>
    refused(ggufBytes({ ...valid, stringLengthLie: 1_000_000_000n }), /claims 1000000000 bytes/));
  it('refuses a tensor count the file cannot hold', () => refused(ggufBytes({ ...valid, tensorCount: 1n << 50n }), /claims/));
  it('names a missing file', async () => {
    await expect(readGgufHeader(join(dir, 'nope.gguf'))).rejects.toThrow(/does not exist/);
  });
});

describe('what --dtype keep stores', () => {
  /** MatMulNBits' dequantization, (q - zero) * scale in float32, of the blocks an import writes. */
  const decode = (m: ReturnType<typeof toMatMulNBits>, rows: number, cols: number, bits: 4 | 8) => {
    const out = new Float32Array(rows * cols);
    const zeroBytes = Math.ceil((m.blocksPerRow * bits) / 8);
    const nibble = (bytes: Uint8Array, i: number) => (bytes[i >> 1] >> ((i & 1) * 4)) & 15;
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const block = r * m.blocksPerRow + Math.floor(c / 32);
        const code = bits === 8 ? m.codes[r * cols + c] : nibble(m.codes, r * cols + c);
        const zero =
          bits === 8 ? m.zeroPoints[r * zeroBytes + Math.floor(c / 32)] : nibble(m.zeroPoints.subarray(r * zeroBytes), Math.floor(c / 32));
        out[r * cols + c] = Math.fround((code - zero) * m.scales[block]);
      }
    return out;
  };

  it.each([
    ['Q4_0', 4],
    ['Q8_0', 8],
  ] as const)('%s blocks go to MatMulNBits unchanged: the stored weights dequantize to gguf-py values bit for bit', async (type, bits) => {
    const quant = await readGgufHeader(join(FIXTURES, 'quants.gguf'));
    const expected = await readGgufHeader(join(FIXTURES, 'quants-expected.gguf'));
    const t = quant.tensors.get(type)!;
    const [rows, cols] = t.shape;
    const stored = toMatMulNBits(type, await readGgufTensorBytes(quant, t), rows, cols);
    const want = await readGgufTensorF32(expected, expected.tensors.get(type)!);
    expect(new Uint32Array(decode(stored, rows, cols, bits).buffer)).toEqual(new Uint32Array(want.buffer));
  });
});
