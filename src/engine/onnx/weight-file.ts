// The external-data file beside a graph: initializers are appended here and the graph stores only
// (location, offset, length), so multi-gigabyte models load without protobuf's 2 GB limit.
// Several graphs may share one file (a probe reuses its layer's weights): each tensor is written
// once, keyed by name, and later requests get the same offsets.

import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import type { WeightDtype } from '../../shared/dtypes.js';
import { encodeHalf } from '../io/float16.js';

/**
 * How a pack stores weights. fp32/fp16: every float weight in that type. int8/int4: the decoder's and
 * head's linear layers block-quantized for MatMulNBits at that width, the vision tower's at int8, every
 * other weight fp16.
 */
export type { WeightDtype };
export type StoredType = 'float' | 'float16' | 'uint8';

export interface ExternalRef {
  location: string;
  offset: number;
  length: number;
  type: StoredType;
  dims: number[];
}

const ALIGN = 64; // keeps every tensor aligned for SIMD loads when the runtime maps the file

export class WeightFile {
  readonly location: string;
  private readonly fd: number;
  private size = 0;
  private readonly refs = new Map<string, ExternalRef>();
  private readonly hash = createHash('sha256');

  /**
   * `int8Activations`: quantized linears also quantize their input to int8 per block (MatMulNBits
   * accuracy_level 4), as llama.cpp's Q8_0/Q4_0 dot products do. On a CPU that is ORT's fast path: a
   * 4096 x 4096 int8 product at one token took 0.8 ms against 89 ms (the float path dequantizes the whole
   * matrix every run), int4 0.5 ms against 1.3 ms. Off, the product is exact on the dequantized weights.
   */
  constructor(
    readonly path: string,
    readonly dtype: WeightDtype,
    readonly options: { int8Activations?: boolean } = {},
  ) {
    this.location = basename(path);
    this.fd = openSync(path, 'w');
  }

  /** Bits per quantized linear weight, or 0 when linears stay float. */
  get quantBits(): 0 | 4 | 8 {
    return this.dtype === 'int4' ? 4 : this.dtype === 'int8' ? 8 : 0;
  }

  /** The stored type of float weights: fp32 only in fp32 packs. */
  get floatType(): StoredType {
    return this.dtype === 'fp32' ? 'float' : 'float16';
  }

  /** A float tensor for `key` in this file's float type, written via `load` the first time it is asked for. */
  tensor(key: string, load: () => Promise<{ data: Float32Array; dims: number[] }>): Promise<ExternalRef> {
    return this.stored(key, async () => {
      const { data, dims } = await load();
      const typed = this.floatType === 'float16' ? encodeHalf(data) : data;
      return { bytes: new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength), type: this.floatType, dims };
    });
  }

  /** Any tensor already encoded (quantized blocks, their scales), written once per key. */
  async stored(key: string, encode: () => Promise<{ bytes: Uint8Array; type: StoredType; dims: number[] }>): Promise<ExternalRef> {
    const known = this.refs.get(key);
    if (known) return known;
    const { bytes, type, dims } = await encode();
    const padding = (ALIGN - (this.size % ALIGN)) % ALIGN;
    if (padding) this.write(new Uint8Array(padding));
    const ref = { location: this.location, offset: this.size + padding, length: bytes.byteLength, type, dims };
    this.write(bytes);
    this.size = ref.offset + ref.length;
    this.refs.set(key, ref);
    return ref;
  }

  /** Closes the file and returns the sha256 of its bytes (hashed as written, no second read). */
  close(): string {
    fsyncSync(this.fd); // on disk before the pack folder is renamed into the store
    closeSync(this.fd);
    return this.hash.digest('hex');
  }

  private write(bytes: Uint8Array): void {
    for (let done = 0; done < bytes.byteLength; ) done += writeSync(this.fd, bytes, done);
    this.hash.update(bytes);
  }
}
