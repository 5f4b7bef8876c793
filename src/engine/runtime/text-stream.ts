/**
 * Turns generated token ids into streamed text: decodes the whole answer each step (byte-level BPE
 * pieces only become valid UTF-8 together), emits only what is new and settled, and ends the answer
 * at a stop string without ever streaming any part of it.
 */

export interface Detokenizer {
  decode(ids: readonly number[]): string;
}

export class TextStream {
  readonly #ids: number[] = [];
  #emitted = 0;
  #text = '';
  #stopped = false;

  constructor(
    private readonly tokenizer: Detokenizer,
    private readonly stopStrings: readonly string[] = [],
  ) {}

  /** Adds a token; returns the text that can be shown now ('' when nothing new is settled). */
  push(id: number): string {
    if (this.#stopped) return '';
    this.#ids.push(id);
    this.#text = this.tokenizer.decode(this.#ids);
    const stopAt = this.#firstStop();
    if (stopAt >= 0) {
      this.#stopped = true;
      this.#text = this.#text.slice(0, stopAt);
      return this.#take(this.#text.length);
    }
    return this.#take(this.#settledLength());
  }

  /** True once a stop string appeared; the text ends before it. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** The answer so far, stop string excluded. */
  get text(): string {
    return this.#text;
  }

  /** Whatever was held back (a partial character or a possible stop-string prefix) once generation ends. */
  flush(): string {
    return this.#take(this.#text.length);
  }

  #take(end: number): string {
    if (end <= this.#emitted) return '';
    const piece = this.#text.slice(this.#emitted, end);
    this.#emitted = end;
    return piece;
  }

  #firstStop(): number {
    let first = -1;
    for (const stop of this.stopStrings) {
      const at = this.#text.indexOf(stop, Math.max(0, this.#emitted - stop.length));
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    return first;
  }

  /** Text up to an incomplete character (U+FFFD at the end) or the start of a possible stop string. */
  #settledLength(): number {
    let end = this.#text.length;
    while (end > this.#emitted && this.#text[end - 1] === '\uFFFD') end--;
    for (const stop of this.stopStrings) {
      for (let k = Math.min(stop.length - 1, end); k > 0; k--) {
        if (this.#text.endsWith(stop.slice(0, k)) && this.#text.length - k < end) {
          end = this.#text.length - k;
          break;
        }
      }
    }
    return Math.max(end, this.#emitted);
  }
}
