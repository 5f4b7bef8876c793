/** A uniform [0, 1) generator. */
export type Uniform = () => number;

/**
 * mulberry32: a tiny seeded PRNG with a full 2^32 period, the one generator of the engine
 * (sampling, the random-pruning control, the synthetic dataset), so a seed means the same
 * sequence everywhere.
 */
export function mulberry32(seed: number): Uniform {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
