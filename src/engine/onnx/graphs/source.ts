import type { LlavaConfig } from '../../model/config.js';
import type { WeightNames } from '../../model/weights.js';
import type { WeightReader } from '../blocks.js';

/** What every graph is built from: the parsed config, the checkpoint's weight names, and a reader for them. */
export interface GraphSource {
  config: LlavaConfig;
  names: WeightNames;
  reader: WeightReader;
}
