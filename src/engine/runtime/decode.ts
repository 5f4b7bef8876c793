import { embedTokens, lastTokenLogits, runLayer, type LayerCache, type ModelSessions, type RopeGrid } from './graphs.js';
import type { PrefillResult } from './prefill.js';

/**
 * Decoding: one new token through every layer per step, each layer appending to its own cache in place.
 * A Decoder takes the prefill's caches over (they grow as it steps), so one PrefillResult feeds one Decoder.
 * Layers may hold caches of different lengths after pruning, so each layer also has its own next
 * position (compact: its cache length; original: the unpruned length), advanced by one per step.
 */
export class Decoder {
  readonly #model: ModelSessions;
  readonly #caches: LayerCache[];
  readonly #nextPosition: number[];
  readonly #ropeGrids: readonly (RopeGrid | undefined)[];

  constructor(model: ModelSessions, prefilled: Pick<PrefillResult, 'caches' | 'nextPosition' | 'ropeGrids'>) {
    this.#model = model;
    this.#caches = [...prefilled.caches];
    this.#nextPosition = [...prefilled.nextPosition];
    this.#ropeGrids = prefilled.ropeGrids;
  }

  /** Feeds `token` and returns the logits [V] for the token after it. */
  async step(token: number): Promise<Float32Array> {
    let hidden = await embedTokens(this.#model, [token]);
    for (let layer = 0; layer < this.#caches.length; layer++) {
      const position = [this.#nextPosition[layer]];
      hidden = (await runLayer(this.#model, layer, hidden, position, this.#caches[layer], false, undefined, this.#ropeGrids[layer])).hidden;
      this.#nextPosition[layer]++;
    }
    return lastTokenLogits(this.#model, hidden);
  }
}
