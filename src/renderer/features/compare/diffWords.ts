/** A run of words in one answer, marked when the other answer does not share it. */
export interface DiffSegment {
  text: string;
  changed: boolean;
}

/**
 * Word-level diff of two answers by longest common subsequence: words outside the LCS are marked
 * (removed on the left, added on the right). Whitespace is kept with the word before it so the
 * segments join back into the original text.
 */
export function diffWords(left: string, right: string): { left: DiffSegment[]; right: DiffSegment[] } {
  const a = words(left);
  const b = words(right);
  const common = lcsTable(
    a.map((w) => w.trim()),
    b.map((w) => w.trim()),
  );
  const inLeft = new Array<boolean>(a.length).fill(false);
  const inRight = new Array<boolean>(b.length).fill(false);
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i].trim() === b[j].trim()) {
      inLeft[i++] = true;
      inRight[j++] = true;
    } else if (common[i + 1][j] >= common[i][j + 1]) i++;
    else j++;
  }
  return { left: segments(a, inLeft), right: segments(b, inRight) };
}

/** Words with their trailing whitespace; leading whitespace becomes its own unchanged-looking token. */
function words(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

/** common[i][j] = LCS length of a[i..] and b[j..]. */
function lcsTable(a: string[], b: string[]): number[][] {
  const table = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
    }
  }
  return table;
}

function segments(tokens: string[], shared: boolean[]): DiffSegment[] {
  const out: DiffSegment[] = [];
  tokens.forEach((text, k) => {
    const changed = !shared[k] && text.trim() !== '';
    const last = out.at(-1);
    if (last && last.changed === changed) last.text += text;
    else out.push({ text, changed });
  });
  return out;
}
