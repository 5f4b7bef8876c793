import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256File, sha256Files, sha256Text, writeFileAtomic } from '../../src/engine/io/files.js';
import { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat } from '../../src/engine/io/float16.js';
import {
  readSafetensorsHeader,
  readTensorF32,
  TensorSet,
  writeSafetensors,
  writeSafetensorsStreamed,
} from '../../src/engine/io/safetensors.js';

const dir = mkdtempSync(join(tmpdir(), 'safetensors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A safetensors file from a literal header and data bytes, so every corruption can be written by hand. */
function rawFile(name: string, header: unknown, data: Uint8Array, headerText = JSON.stringify(header)): string {
  const path = join(dir, name);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(headerText)));
  writeFileSync(path, Buffer.concat([len, Buffer.from(headerText), data]));
  return path;
}
const f32Bytes = (...values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

describe('half and bfloat16 conversion (hand-computed bit patterns)', () => {
  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [2 ** -14, 0x0400],
    [2 ** -24, 0x0001],
    [0.1, 0x2e66], // 0.1 = 1.6 * 2^-4; mantissa 0.6 * 1024 = 614.4 -> 614 = 0x266
    [1 + 2 ** -11, 0x3c00], // exactly half an ulp above 1: ties to even (down)
    [1 + 3 * 2 ** -11, 0x3c02], // half an ulp above 1 + 2^-10: ties to even (up)
    [65520, 0x7c00], // rounds past the largest half: infinity
    [2 ** -26, 0x0000], // below half the smallest subnormal
    [Infinity, 0x7c00],
    [-0, 0x8000],
  ])('float %d -> half 0x%s', (value, bits) => {
    expect(floatToHalf(value)).toBe(bits);
  });

  it('half -> float', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0x2e66)).toBe(0.0999755859375);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0xfc00)).toBe(-Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
  });

  it('bfloat16 keeps the top 16 bits of a float32, rounded to nearest even', () => {
    expect(floatToBf16(1)).toBe(0x3f80);
    expect(floatToBf16(0.1)).toBe(0x3dcd); // 0x3dcccccd: the low half 0xcccd > 0x8000 rounds up
    expect(bf16ToFloat(0x3dcd)).toBe(0.10009765625);
    expect(floatToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(floatToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie -> even (up)
    expect(floatToBf16(-3.5)).toBe(0xc060);
    expect(bf16ToFloat(floatToBf16(NaN))).toBeNaN();
  });
});

describe('writeSafetensors / TensorSet round trip', () => {
  const values = Float32Array.from([1, -2, 0.1, 65504, 2 ** -24, 0.5]);

  it('writes the documented layout and reads F32, F16 and BF16 back as float32', async () => {
    const path = join(dir, 'model.safetensors');
    await writeSafetensors(
      path,
      {
        a: { dtype: 'F32', shape: [2, 3], data: values },
        b: { dtype: 'F16', shape: [6], data: values },
        c: { dtype: 'BF16', shape: [3, 2], data: values },
      },
      { format: 'pt' },
    );
    const bytes = readFileSync(path);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    expect((8 + headerLen) % 8).toBe(0); // padded like the reference writer
    expect(JSON.parse(bytes.subarray(8, 8 + headerLen).toString()).b).toEqual({ dtype: 'F16', shape: [6], data_offsets: [24, 36] });

    const file = await readSafetensorsHeader(path);
    expect(file.metadata).toEqual({ format: 'pt' });
    const set = await TensorSet.openFolder(dir);
    expect(Array.from(await set.readF32('a'))).toEqual(Array.from(values));
    expect(Array.from(await set.readF32('b'))).toEqual([1, -2, 0.0999755859375, 65504, 2 ** -24, 0.5]);
    expect(Array.from(await set.readF32('c'))).toEqual([1, -2, 0.10009765625, 65536, bf16ToFloat(floatToBf16(2 ** -24)), 0.5]);
    expect(set.get('c')?.shape).toEqual([3, 2]);
  });

  it('a tensor written in chunks is the same file as the tensor written whole; a wrong value count leaves no file', async () => {
    const whole = join(dir, 'whole.safetensors');
    const chunked = join(dir, 'chunked.safetensors');
    const tensors = { a: { dtype: 'F32' as const, shape: [2, 3], data: values }, b: { dtype: 'BF16' as const, shape: [6], data: values } };
    await writeSafetensors(whole, tensors, { format: 'pt' });
    const inPieces = (data: Float32Array) => () => [data.subarray(0, 1), data.subarray(1, 4), data.subarray(4)];
    await writeSafetensorsStreamed(
      chunked,
      [
        ['a', { dtype: 'F32', shape: [2, 3], chunks: inPieces(values) }],
        ['b', { dtype: 'BF16', shape: [6], chunks: inPieces(values) }],
      ],
      { format: 'pt' },
    );
    expect(readFileSync(chunked).equals(readFileSync(whole))).toBe(true);

    const short = join(dir, 'short.safetensors');
    const tooFew = writeSafetensorsStreamed(short, [['a', { dtype: 'F16', shape: [7], chunks: () => [values] }]]);
    await expect(tooFew).rejects.toThrow('tensor "a" has 6 values for shape [7]');
    expect(readdirSync(dir).filter((f) => f.startsWith('short'))).toEqual([]);
  });

  it('reads sharded checkpoints through model.safetensors.index.json', async () => {
    const shardDir = mkdtempSync(join(dir, 'sharded-'));
    await writeSafetensors(join(shardDir, 'model-00001-of-00002.safetensors'), {
      x: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) },
    });
    await writeSafetensors(join(shardDir, 'model-00002-of-00002.safetensors'), {
      y: { dtype: 'F16', shape: [1], data: Float32Array.from([3]) },
    });
    writeFileSync(
      join(shardDir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' } }),
    );
    const set = await TensorSet.openFolder(shardDir);
    expect(set.names().sort()).toEqual(['x', 'y']);
    expect(Array.from(await set.readF32('y'))).toEqual([3]);

    writeFileSync(
      join(shardDir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { x: 'model-00001-of-00002.safetensors', z: 'model-00001-of-00002.safetensors' } }),
    );
    await expect(TensorSet.openFolder(shardDir)).rejects.toThrow(
      /tensor "z" is listed in shard model-00001-of-00002.safetensors but that file does not contain it/,
    );
    writeFileSync(join(shardDir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: '../elsewhere.safetensors' } }));
    await expect(TensorSet.openFolder(shardDir)).rejects.toThrow(/must be a file name in the same folder/);
    writeFileSync(join(shardDir, 'model.safetensors.index.json'), '{"weight_map": ');
    await expect(TensorSet.openFolder(shardDir)).rejects.toThrow(/model.safetensors.index.json: not valid JSON/);
  });

  it('names the folder when there are no weights at all', async () => {
    const empty = mkdtempSync(join(dir, 'empty-'));
    await expect(TensorSet.openFolder(empty)).rejects.toThrow(/no model.safetensors or model.safetensors.index.json/);
  });
});

describe('corrupt files fail with the file and tensor named', () => {
  const good = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };

  it('truncated data', async () => {
    const path = rawFile('truncated.safetensors', good, f32Bytes(1, 2).subarray(0, 6));
    await expect(readSafetensorsHeader(path)).rejects.toThrow(`${path}: file is truncated`);
  });

  it('header length beyond the file, absurd header length, file shorter than 8 bytes', async () => {
    const path = join(dir, 'short-header.safetensors');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(500n);
    writeFileSync(path, Buffer.concat([len, Buffer.from('{}')]));
    await expect(readSafetensorsHeader(path)).rejects.toThrow(/header length 500 runs past the end/);
    len.writeBigUInt64LE(1n << 40n);
    writeFileSync(path, Buffer.concat([len, Buffer.from('{}')]));
    await expect(readSafetensorsHeader(path)).rejects.toThrow(/exceeds the .*limit/);
    writeFileSync(path, Buffer.from([1, 2, 3]));
    await expect(readSafetensorsHeader(path)).rejects.toThrow(/too short/);
  });

  it('header that is not JSON or not an object', async () => {
    await expect(readSafetensorsHeader(rawFile('bad-json.safetensors', null, new Uint8Array(), '{"w": {'))).rejects.toThrow(
      /header is not valid JSON/,
    );
    await expect(readSafetensorsHeader(rawFile('array.safetensors', [], new Uint8Array()))).rejects.toThrow(/header is not a JSON object/);
  });

  it('overlapping offsets', async () => {
    const header = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } };
    await expect(readSafetensorsHeader(rawFile('overlap.safetensors', header, f32Bytes(1, 2, 3)))).rejects.toThrow(
      /tensor "b" overlaps the previous tensor/,
    );
  });

  it('a gap between tensors and trailing bytes', async () => {
    const gap = { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };
    await expect(readSafetensorsHeader(rawFile('gap.safetensors', gap, f32Bytes(1, 2, 3)))).rejects.toThrow(/gap before tensor "b"/);
    await expect(readSafetensorsHeader(rawFile('trailing.safetensors', good, f32Bytes(1, 2, 3)))).rejects.toThrow(
      /4 unexpected trailing bytes/,
    );
  });

  it('shape and byte length that disagree', async () => {
    const header = { w: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } };
    await expect(readSafetensorsHeader(rawFile('size.safetensors', header, f32Bytes(1, 2)))).rejects.toThrow(
      /tensor "w": shape \[3\] of F16 needs 6 bytes, data_offsets span 8/,
    );
  });

  it('unknown dtype, and malformed shape or offsets', async () => {
    const dtype = { w: { dtype: 'F12', shape: [2], data_offsets: [0, 8] } };
    await expect(readSafetensorsHeader(rawFile('dtype.safetensors', dtype, f32Bytes(1, 2)))).rejects.toThrow(
      /tensor "w": unknown dtype "F12" \(known: F64, F32/,
    );
    const shape = { w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } };
    await expect(readSafetensorsHeader(rawFile('shape.safetensors', shape, f32Bytes(1, 2)))).rejects.toThrow(
      /shape must be an array of non-negative integers/,
    );
    const offsets = { w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } };
    await expect(readSafetensorsHeader(rawFile('offsets.safetensors', offsets, f32Bytes(1, 2)))).rejects.toThrow(
      /data_offsets must be \[begin, end\]/,
    );
  });

  it('a known but non-float dtype is listed, and refused when read as weights', async () => {
    const path = rawFile('ints.safetensors', { ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8));
    const [entry] = (await readSafetensorsHeader(path)).tensors;
    await expect(readTensorF32(entry)).rejects.toThrow(`${path}: tensor "ids" has dtype I64; weights must be F32, F16, BF16`);
  });
});

describe('file helpers under the reader and writer', () => {
  it('sha256 of files and text match the FIPS 180-2 "abc" vector; atomic writes leave no temp files', async () => {
    const sub = mkdtempSync(join(dir, 'files-'));
    const path = join(sub, 'abc.txt');
    await writeFileAtomic(path, 'abc');
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(await sha256File(path)).toBe(abc);
    expect(sha256Text('abc')).toBe(abc);
    const labels: string[] = [];
    const combined = await sha256Files(
      [
        { label: 'a', path },
        { label: 'b', path },
      ],
      { onFile: (_, label) => labels.push(label) },
    );
    expect(combined).toBe(sha256Text('a\0abcb\0abc'));
    expect(labels).toEqual(['a', 'b']);
    await writeFileAtomic(path, 'replaced');
    expect(readdirSync(sub)).toEqual(['abc.txt']);
    expect(readFileSync(path, 'utf8')).toBe('replaced');
  });
});

describe('float -> half over the whole range', () => {
  /** Nearest half by arithmetic (ties to even), independent of the bit manipulation under test. */
  function nearestHalf(v: number): number {
    const a = Math.abs(v);
    if (a >= 65520) return Math.sign(v) * Infinity;
    const ulp = 2 ** (Math.max(Math.floor(Math.log2(a)), -14) - 10);
    const q = a / ulp;
    let r = Math.round(q);
    if (q - Math.floor(q) === 0.5 && r % 2 === 1) r -= 1;
    return Math.sign(v) * r * ulp; // keeps the sign of zero, as IEEE halves do
  }

  it('agrees with arithmetic rounding on 20000 floats from 2^-27 to 2^17', () => {
    let s = 12345;
    const f = new Float32Array(1);
    for (let i = 0; i < 20000; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      f[0] = (s & 1 ? -1 : 1) * 2 ** (-27 + (44 * (s >>> 8)) / 2 ** 24);
      expect(halfToFloat(floatToHalf(f[0]))).toBe(nearestHalf(f[0]));
    }
  });
});

describe('names that are also properties of every JavaScript object', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])('refuses dtype %s as unknown', async (dtype) => {
    const path = rawFile(`proto-${dtype}.safetensors`, { w: { dtype, shape: [1], data_offsets: [0, 4] } }, f32Bytes(1));
    await expect(readSafetensorsHeader(path)).rejects.toThrow(`tensor "w": unknown dtype "${dtype}"`);
  });
});
