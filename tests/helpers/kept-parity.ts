import { expect } from 'vitest';

/** One pruning stage as the Python fixture makers write it. */
export interface ReferenceStage {
  after_layer: number;
  keep: number;
  /** Bit i = visual token i kept. */
  kept_hex: string;
  /** The reference's score gap between the last kept and the first dropped token (null when nothing was dropped). */
  score_margin: number | null;
}

/** Two fp32 implementations may order the boundary pair either way when the reference's scores are this close. */
const TIE_MARGIN = 1e-6;

/** Bit i of the hex number = visual token i: the kept set, ascending. */
export function keptFromHex(hex: string): number[] {
  const bits = BigInt(`0x${hex}`);
  const kept: number[] = [];
  for (let i = 0; i < hex.length * 4; i++) if ((bits >> BigInt(i)) & 1n) kept.push(i);
  return kept;
}

/**
 * Asserts the engine pruned after the reference's layers and kept exactly its tokens at every stage. Where the reference's boundary pair ties
 * to within TIE_MARGIN the engine may keep the other one of the pair; the stages after such a swap score a
 * different token set (another token's attention enters every normalisation), so they are not compared.
 * Returns the number of stages compared.
 */
export function expectSameKept(label: string, stages: ReferenceStage[], pruned: { layer: number; kept?: number[] }[]): number {
  expect(
    pruned.map((l) => l.layer),
    `${label}: layers pruned after`,
  ).toEqual(stages.map((s) => s.after_layer));
  for (const [i, s] of stages.entries()) {
    const kept = pruned[i].kept!;
    expect(kept.length, `${label} stage ${i + 1}: kept`).toBe(s.keep);
    const swapped = keptFromHex(s.kept_hex).filter((t) => !kept.includes(t)).length;
    if (swapped === 0) continue;
    const tie = s.score_margin !== null && s.score_margin < TIE_MARGIN;
    expect(swapped, `${label} stage ${i + 1}: ${swapped} tokens differ (margin ${s.score_margin})`).toBe(tie ? 1 : 0);
    return i + 1;
  }
  return stages.length;
}
