// A minimal GGUF writer for tests: headers that are valid or hostile in exactly one way.

export type TestValue = { u32: number } | { f32: number } | { str: string } | { bool: boolean } | { strs: string[] } | { u64: bigint };

export interface TestTensor {
  name: string;
  /** innermost first, as GGUF stores them */
  dims: bigint[];
  type: number;
  offset: bigint;
}

export interface TestHeader {
  magic?: string;
  version?: number;
  kv?: [string, TestValue][];
  tensors?: TestTensor[];
  /** Overrides the tensor count written (a lie about how many follow). */
  tensorCount?: bigint;
  /** Bytes of tensor data after the aligned header. */
  data?: Uint8Array;
  /** A string's length field replaced by this (a claim larger than the string). */
  stringLengthLie?: bigint;
}

export function ggufBytes(h: TestHeader): Uint8Array {
  const parts: Buffer[] = [];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    parts.push(b);
  };
  const u64 = (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    parts.push(b);
  };
  const str = (s: string, lie?: bigint) => {
    const bytes = Buffer.from(s, 'utf8');
    u64(lie ?? BigInt(bytes.length));
    parts.push(bytes);
  };
  parts.push(Buffer.from(h.magic ?? 'GGUF', 'latin1'));
  u32(h.version ?? 3);
  const tensors = h.tensors ?? [];
  u64(h.tensorCount ?? BigInt(tensors.length));
  const kv = h.kv ?? [];
  u64(BigInt(kv.length));
  for (const [key, value] of kv) {
    str(key);
    if ('u32' in value) {
      u32(4);
      u32(value.u32);
    } else if ('u64' in value) {
      u32(10);
      u64(value.u64);
    } else if ('f32' in value) {
      u32(6);
      const b = Buffer.alloc(4);
      b.writeFloatLE(value.f32);
      parts.push(b);
    } else if ('bool' in value) {
      u32(7);
      parts.push(Buffer.from([value.bool ? 1 : 0]));
    } else if ('str' in value) {
      u32(8);
      str(value.str, h.stringLengthLie);
    } else {
      u32(9);
      u32(8);
      u64(BigInt(value.strs.length));
      for (const s of value.strs) str(s);
    }
  }
  for (const t of tensors) {
    str(t.name);
    u32(t.dims.length);
    for (const d of t.dims) u64(d);
    u32(t.type);
    u64(t.offset);
  }
  const header = Buffer.concat(parts);
  const padded = Math.ceil(header.length / 32) * 32;
  return Buffer.concat([header, Buffer.alloc(padded - header.length), Buffer.from(h.data ?? new Uint8Array())]);
}
