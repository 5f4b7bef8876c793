import { l1Normalize } from './select.js';

/**
 * Instruction-Guided Attention (method spec §3). The probe graph already returns, for every key,
 * the attention averaged over heads and then over the queries `queryStart..S-1` (each row a softmax
 * over all S keys with the causal mask). IGA is its visual slice, L1-normalized over the current
 * visual tokens. TransPrune's queries are every token after the visual block.
 */
export function igaFromProbe(
  attention: ArrayLike<number>,
  visualStart: number,
  visualCount: number,
): { raw: Float64Array; normalized: Float64Array } {
  if (attention.length < visualStart + visualCount)
    throw new Error(`probe returned ${attention.length} values for a visual block ending at ${visualStart + visualCount}`);
  const raw = Float64Array.from({ length: visualCount }, (_, t) => attention[visualStart + t]);
  return { raw, normalized: l1Normalize(raw) };
}
