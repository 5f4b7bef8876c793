import type { LlavaConfig, TextConfig } from '../../model/config.js';
import type { WeightNames } from '../../model/weights.js';
import type { WeightReader } from '../blocks.js';

/** The decoder as the text-side graphs (embed, layers, probes, head) build it: Llama, or Qwen2 with q/k/v biases and M-RoPE. */
export interface DecoderTextConfig extends TextConfig {
  qkvBias?: boolean;
  /** M-RoPE's rotary frequencies per axis (temporal, height, width); absent = 1D RoPE. */
  mropeSection?: readonly [number, number, number];
}

/** What the text-side graphs read: the text model's config and weight names, and a reader for them. */
export interface DecoderSource {
  config: { text: DecoderTextConfig };
  names: { text(name: string): string; lmHead(): string };
  reader: WeightReader;
}

/** What every LLaVA graph is built from: the parsed config, the checkpoint's weight names, and a reader for them. */
export interface GraphSource extends DecoderSource {
  config: LlavaConfig;
  names: WeightNames;
}
