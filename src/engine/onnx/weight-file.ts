// The external-data file beside a graph: initializers are appended here and the graph stores only
// (location, offset, length), so multi-gigabyte models load without protobuf's 2 GB limit.
// Several graphs may share one file (a probe reuses its layer's weights): each tensor is written
// once, keyed by name, and later requests get the same offsets.

import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { encodeHalf } from '../io/float16.js';

export type WeightDtype = 'fp32' | 'fp16';

export interface ExternalRef {
  location: string;
  offset: number;
  length: number;
  dtype: WeightDtype;
  dims: number[];
}

const ALIGN = 64; // keeps every tensor aligned for SIMD loads when the runtime maps the file

export class WeightFile {
  readonly location: string;
  private readonly fd: number;
  private size = 0;
  private readonly refs = new Map<string, ExternalRef>();
  private readonly hash = createHash('sha256');

  constructor(readonly path: string, readonly dtype: WeightDtype) {
    this.location = basename(path);
    this.fd = openSync(path, 'w');
  }

  /** The stored tensor for `key`, writing it via `load` the first time it is asked for. */
  async tensor(key: string, load: () => Promise<{ data: Float32Array; dims: number[] }>): Promise<ExternalRef> {
    const known = this.refs.get(key);
    if (known) return known;
    const { data, dims } = await load();
    const typed = this.dtype === 'fp16' ? encodeHalf(data) : data;
    const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
    const padding = (ALIGN - (this.size % ALIGN)) % ALIGN;
    if (padding) this.write(new Uint8Array(padding));
    const ref = { location: this.location, offset: this.size + padding, length: bytes.byteLength, dtype: this.dtype, dims };
    this.write(bytes);
    this.size = ref.offset + ref.length;
    this.refs.set(key, ref);
    return ref;
  }

  /** Closes the file and returns the sha256 of its bytes (hashed as written, no second read). */
  close(): string {
    closeSync(this.fd);
    return this.hash.digest('hex');
  }

  private write(bytes: Uint8Array): void {
    for (let done = 0; done < bytes.byteLength;) done += writeSync(this.fd, bytes, done);
    this.hash.update(bytes);
  }
}
