import { describe, expect, it } from 'vitest';
import { LruCache } from '../../src/engine/runtime/lru.js';
import { argmax, sampleToken } from '../../src/engine/runtime/sampling.js';
import { mulberry32 } from '../../src/engine/util/mulberry32.js';
import { TextStream, type Detokenizer } from '../../src/engine/runtime/text-stream.js';

const logitsOf = (probs: number[]) => Float32Array.from(probs, Math.log);

describe('sampling', () => {
  it('temperature 0 is argmax, lowest index on ties', () => {
    expect(sampleToken(Float32Array.of(1, 5, 5, 2), {}, mulberry32(1))).toBe(1);
    expect(argmax([3, 1, 3])).toBe(0);
  });

  it('the same seed gives the same tokens, another seed other tokens', () => {
    const logits = logitsOf([0.1, 0.2, 0.3, 0.4]);
    const draw = (seed: number) => {
      const rng = mulberry32(seed);
      return Array.from({ length: 40 }, () => sampleToken(logits, { temperature: 1 }, rng));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('temperature 1 draws tokens with their softmax probabilities', () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const rng = mulberry32(3);
    const counts = [0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logitsOf(probs), { temperature: 1 }, rng)]++;
    // Binomial standard deviation is at most 0.0036 here; allow 4 of them.
    counts.forEach((c, i) => expect(Math.abs(c / n - probs[i])).toBeLessThan(0.015));
  });

  it('top-p keeps the smallest head reaching p and renormalises it', () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const rng = mulberry32(4);
    const counts = [0, 0, 0, 0];
    const n = 10000;
    for (let i = 0; i < n; i++) counts[sampleToken(logitsOf(probs), { temperature: 1, topP: 0.75 }, rng)]++;
    expect(counts[2] + counts[3]).toBe(0); // 0.5 + 0.3 >= 0.75: the tail is never drawn
    expect(Math.abs(counts[0] / n - 0.5 / 0.8)).toBeLessThan(0.02);
  });

  it('low temperature sharpens towards the argmax', () => {
    const rng = mulberry32(5);
    const picks = Array.from({ length: 200 }, () => sampleToken(logitsOf([0.4, 0.6]), { temperature: 0.05 }, rng));
    expect(picks.filter((t) => t === 1).length).toBeGreaterThan(195);
  });
});

/** A byte-level toy tokenizer: each id is a list of UTF-8 bytes, decoded together as a BPE tokenizer does. */
function byteTokenizer(pieces: number[][]): Detokenizer {
  return { decode: (ids) => new TextDecoder().decode(Uint8Array.from(ids.flatMap((id) => pieces[id]))) };
}
const bytes = (s: string) => Array.from(new TextEncoder().encode(s));

describe('text stream', () => {
  it('holds back a character split across tokens until it is complete', () => {
    const euro = bytes('€'); // 3 bytes
    const tok = byteTokenizer([bytes('a'), [euro[0]], [euro[1], euro[2]], bytes('b')]);
    const stream = new TextStream(tok);
    expect([0, 1, 2, 3].map((id) => stream.push(id))).toEqual(['a', '', '€', 'b']);
    expect(stream.text).toBe('a€b');
  });

  it('ends at a stop string and never streams any of it', () => {
    const tok = byteTokenizer([bytes('The cat'), bytes(' US'), bytes('ER:'), bytes(' more')]);
    const stream = new TextStream(tok, ['USER:']);
    const out = [0, 1, 2].map((id) => stream.push(id));
    expect(out).toEqual(['The cat', ' ', '']); // ' US' shows its space and holds 'US'
    expect(stream.stopped).toBe(true);
    expect(stream.text).toBe('The cat ');
    expect(stream.push(3)).toBe('');
  });

  it('releases a held stop-string prefix when it turns out not to be one', () => {
    const tok = byteTokenizer([bytes('x US'), bytes('A')]);
    const stream = new TextStream(tok, ['USER:']);
    expect(stream.push(0)).toBe('x ');
    expect(stream.push(1)).toBe('USA');
    expect(stream.flush()).toBe('');
  });

  it('flush gives what was held back when generation ends', () => {
    const stream = new TextStream(byteTokenizer([bytes('ends with US')]), ['USER:']);
    expect(stream.push(0)).toBe('ends with ');
    expect(stream.flush()).toBe('US');
  });
});

describe('lru cache', () => {
  it('evicts the least recently used entry', () => {
    const lru = new LruCache<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1); // a is now the most recent
    lru.set('c', 3);
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe(1);
    expect(lru.get('c')).toBe(3);
    expect(lru.size).toBe(2);
  });
});
