/**
 * Next-token choice: greedy (temperature 0) or temperature + top-p (nucleus) sampling with a seeded PRNG,
 * so a seed reproduces an answer exactly.
 */

import type { SamplingParams } from '../../shared/ipc-features.js';
import type { Uniform } from '../util/mulberry32.js';

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Picks the next token from one row of logits. */
export function sampleToken(logits: Float32Array, params: SamplingParams, rng: Uniform): number {
  const temperature = params.temperature ?? 0;
  if (temperature <= 0) return argmax(logits);
  const probs = softmax(logits, temperature);
  const topP = params.topP ?? 1;
  // Without a nucleus cut every token is a candidate: no need to sort the vocabulary.
  return draw(probs, topP >= 1 ? Array.from(probs.keys()) : nucleus(probs, topP), rng);
}

/** Draws one of `candidates` with probability proportional to probs[candidate]. */
function draw(probs: Float64Array, candidates: number[], rng: Uniform): number {
  let total = 0;
  for (const i of candidates) total += probs[i];
  let r = rng() * total;
  for (const i of candidates) {
    r -= probs[i];
    if (r < 0) return i;
  }
  return candidates[candidates.length - 1];
}

function softmax(logits: Float32Array, temperature: number): Float64Array {
  const max = logits[argmax(logits)];
  const probs = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += probs[i] = Math.exp((logits[i] - max) / temperature);
  for (let i = 0; i < probs.length; i++) probs[i] /= sum;
  return probs;
}

/** Token ids by descending probability, cut after the cumulative probability first reaches topP. */
function nucleus(probs: Float64Array, topP: number): number[] {
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
  let cumulative = 0;
  for (let k = 0; k < order.length; k++) {
    cumulative += probs[order[k]];
    if (cumulative >= topP) return order.slice(0, k + 1);
  }
  return order;
}
