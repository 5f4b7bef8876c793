/**
 * Exact-match scoring for short answers (VQA-style normalisation): lowercase, punctuation and the
 * articles a/an/the removed, number words written as digits, whitespace collapsed.
 */
const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve'];
const ARTICLES = new Set(['a', 'an', 'the']);

export function normalizeAnswer(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s]/gu, ' ')
    .split(/\s+/)
    .filter((word) => word !== '' && !ARTICLES.has(word))
    .map((word) => {
      const n = NUMBER_WORDS.indexOf(word);
      return n >= 0 ? String(n) : word;
    })
    .join(' ');
}

export function isExactMatch(prediction: string, answer: string): boolean {
  return normalizeAnswer(prediction) === normalizeAnswer(answer);
}

export interface Tally {
  correct: number;
  total: number;
  accuracy: number;
}

/** Accuracy overall and per family of a list of scored items. */
export function tallyByFamily(items: ReadonlyArray<{ family: string; correct: boolean }>): {
  overall: Tally;
  perFamily: Record<string, Tally>;
} {
  const groups = new Map<string, boolean[]>();
  for (const item of items) groups.set(item.family, [...(groups.get(item.family) ?? []), item.correct]);
  const perFamily = Object.fromEntries([...groups.keys()].sort().map((family) => [family, tally(groups.get(family)!)]));
  return { overall: tally(items.map((i) => i.correct)), perFamily };
}

function tally(hits: boolean[]): Tally {
  const correct = hits.filter(Boolean).length;
  return { correct, total: hits.length, accuracy: hits.length ? correct / hits.length : 0 };
}

export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0;
}
