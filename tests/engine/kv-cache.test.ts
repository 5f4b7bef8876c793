import { describe, expect, it } from 'vitest';
import { LayerCache } from '../../src/engine/runtime/graphs.js';

/**
 * The runtime's KV cache: what the layer graph reads (past_key/past_value slots, past_length) and what
 * keys/values report must always be each KV head's rows in the order they were appended, across the
 * reallocations decode makes, and holders of a shared prefill cache must never see each other's rows.
 */

const dims = { numKvHeads: 3, headDim: 4 };
const rowSize = dims.headDim;

/** `count` rows per head, [1, KvH, count, Dh], each value naming its head, position and dim. */
function rows(first: number, count: number, tag = 0): Float32Array {
  const out = new Float32Array(dims.numKvHeads * count * rowSize);
  for (let h = 0; h < dims.numKvHeads; h++) {
    for (let p = 0; p < count; p++) {
      for (let d = 0; d < rowSize; d++) out[(h * count + p) * rowSize + d] = tag + h * 1e5 + (first + p) * 10 + d;
    }
  }
  return out;
}

/** What a cache of positions 0..length-1 must hold, head by head. */
function expected(length: number, tag = 0, tagFrom = length): number[] {
  const out: number[] = [];
  for (let h = 0; h < dims.numKvHeads; h++) {
    for (let p = 0; p < length; p++) for (let d = 0; d < rowSize; d++) out.push((p >= tagFrom ? tag : 0) + h * 1e5 + p * 10 + d);
  }
  return out;
}

describe('LayerCache', () => {
  it('holds every appended row in order across reallocations, and feeds the graph the filled slots', () => {
    const cache = new LayerCache(dims);
    cache.append(rows(0, 5), rows(0, 5, 0.5), 5); // a prefill's rows
    expect(Array.from(cache.keys)).toEqual(expected(5));
    for (let p = 5; p < 300; p++) cache.append(rows(p, 1), rows(p, 1, 0.5), 1); // decode steps, past two reallocations
    expect(cache.length).toBe(300);
    expect(Array.from(cache.keys)).toEqual(expected(300));
    expect(Array.from(cache.values)).toEqual(expected(300).map((v) => v + 0.5));

    const { past_key, past_value, past_length } = cache.feeds();
    expect(Number((past_length.data as BigInt64Array)[0])).toBe(300);
    const [, heads, capacity, headDim] = past_key.dims;
    expect([heads, headDim]).toEqual([dims.numKvHeads, dims.headDim]);
    expect(capacity).toBeGreaterThanOrEqual(300);
    const slots = past_key.data as Float32Array;
    const filled = Array.from({ length: heads }, (_, h) =>
      Array.from(slots.subarray(h * capacity * headDim, (h * capacity + 300) * headDim)),
    );
    expect(filled.flat()).toEqual(expected(300));
    expect(past_value.dims).toEqual(past_key.dims);
  });

  it('lets the branches of a shared prefill append their own rows without seeing each other', () => {
    const first = new LayerCache(dims);
    first.append(rows(0, 4), rows(0, 4), 4);
    const second = first.share();
    first.append(rows(4, 1, 0.25), rows(4, 1, 0.25), 1);
    second.append(rows(4, 1, 0.75), rows(4, 1, 0.75), 1);
    second.append(rows(5, 1, 0.75), rows(5, 1, 0.75), 1);
    expect(Array.from(first.keys)).toEqual(expected(5, 0.25, 4));
    expect(Array.from(second.keys)).toEqual(expected(6, 0.75, 4));
    expect(() => first.share()).toThrow(/only a full cache/);
  });
});
