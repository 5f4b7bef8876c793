import { join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import type { PruningOverrides } from '../../shared/pruning.js';
import type { Trace } from '../../shared/trace.js';
import type { ViewSpec } from '../image/anyres.js';
import type { ClipParams } from '../image/preprocess.js';
import type { QwenImageParams } from '../image/qwen.js';
import { visionOf, type LlavaConfig } from '../model/config.js';
import { isQwen, type ModelConfig, type QwenVLConfig } from '../model/qwen-config.js';
import type { PackManifest } from '../pack/manifest.js';
import { readPack, type PackInfo } from '../pack/read.js';
import type { ChatContent } from '../text/chat.js';
import type { FlopsModel } from '../pruning/flops.js';
import { TextTokenizer } from '../text/tokenizer.js';
import type { RuntimeDims, ModelSessions } from './graphs.js';
import type { ProviderRequest } from '../../shared/providers.js';
import { SessionFactory, type ProviderReport } from './providers.js';

/**
 * A model pack loaded for inference: its sessions on one execution provider, the tokenizer, the chat
 * template and the image preprocessing parameters. Probe sessions are created on first use (only
 * pruning methods that read attention need them).
 */

export interface LoadOptions {
  ep?: ProviderRequest;
  threads?: number;
}

export class LoadedModel implements ModelSessions {
  readonly #probes = new Map<number, Promise<InferenceSession>>();

  private constructor(
    readonly info: PackInfo,
    readonly tokenizer: TextTokenizer,
    readonly provider: ProviderReport,
    readonly embed: InferenceSession,
    /** The vision tower; null for a text-only model. */
    readonly vision: InferenceSession | null,
    readonly layers: readonly InferenceSession[],
    readonly head: InferenceSession,
    private readonly factory: SessionFactory,
  ) {}

  static async load(dir: string, options: LoadOptions = {}): Promise<LoadedModel> {
    const info = await readPack(dir);
    const tokenizer = await TextTokenizer.load(dir);
    const { graphs } = info.manifest;
    const factory = new SessionFactory(options.ep ?? 'auto', { threads: options.threads });
    // The first session settles the provider; the rest follow it.
    const embed = await factory.create(join(dir, graphs.embed));
    const settled = await Promise.allSettled([
      graphs.vision ? factory.create(join(dir, graphs.vision)) : null,
      factory.create(join(dir, graphs.head)),
      ...graphs.layers.map((file) => factory.create(join(dir, file))),
    ]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    const created = settled.map((r) => (r.status === 'fulfilled' ? r.value : null));
    if (failed) {
      // Free what did load: a half-loaded model would hold its memory until the process ends.
      await Promise.allSettled([embed, ...created].map((s) => s?.release()));
      throw failed.reason;
    }
    const [vision, head, ...layers] = created as [InferenceSession | null, ...InferenceSession[]];
    return new LoadedModel(info, tokenizer, factory.report!, embed, vision, layers, head, factory);
  }

  get dir(): string {
    return this.info.dir;
  }

  get manifest(): PackManifest {
    return this.info.manifest;
  }

  /** A LLaVA pack's config; a Qwen2.5-VL pack's is `qwen` (both: `modelConfig`). */
  get config(): LlavaConfig {
    const { config } = this.info;
    if (isQwen(config)) throw new Error(`"${this.info.name}" is a Qwen2.5-VL pack: it has no LLaVA config`);
    return config;
  }

  get modelConfig(): ModelConfig {
    return this.info.config;
  }

  /** Qwen2.5-VL packs: the config; undefined for LLaVA packs. */
  get qwen(): QwenVLConfig | undefined {
    const { config } = this.info;
    return isQwen(config) ? config : undefined;
  }

  /** The prompt's image placeholder (LLaVA's <image>, Qwen's <|image_pad|>). */
  get imageTokenId(): number {
    const { config } = this.info;
    return isQwen(config) ? config.imageTokenId : config.imageTokenIndex;
  }

  /** CLIP preprocessing (LLaVA packs). */
  get clip(): ClipParams {
    if (!this.info.clip) {
      if (this.qwen) throw new Error(`"${this.info.name}" is a Qwen2.5-VL pack: it has no CLIP preprocessing`);
      visionOf(this.config); // throws: a text-only model takes no image
    }
    return this.info.clip!;
  }

  /** Qwen2-VL preprocessing (Qwen2.5-VL packs). */
  get qwenImage(): QwenImageParams {
    if (!this.info.qwenImage) throw new Error(`"${this.info.name}" is a LLaVA pack: it has no Qwen2-VL preprocessing`);
    return this.info.qwenImage;
  }

  get pruningOverrides(): PruningOverrides | undefined {
    return this.info.pruning;
  }

  /** The checkpoint's Jinja chat template; undefined means LLaVA-1.5's default. */
  /** How the chat template takes messages ('parts' unless the pack says otherwise). */
  get chatContent(): ChatContent {
    return this.manifest.chatContent ?? 'parts';
  }

  get chatTemplate(): string | undefined {
    return this.manifest.chatTemplate ?? undefined;
  }

  get dims(): RuntimeDims {
    const t = this.manifest.config.text;
    const dims = { numLayers: t.numLayers, hidden: t.hiddenSize, numKvHeads: t.numKvHeads, headDim: t.headDim, vocabSize: t.vocabSize };
    return this.qwen ? { ...dims, mrope: true } : dims;
  }

  /** How traces name this model: the pack id and the hash of the checkpoint it was imported from. */
  get traceModel(): Trace['model'] {
    return { id: this.manifest.id, weightsHash: this.manifest.source.sha256, numLayers: this.dims.numLayers, hidden: this.dims.hidden };
  }

  /** What the vision tower takes (view size, patch grid, LLaVA-NeXT's AnyRes resolutions). */
  get viewSpec(): ViewSpec {
    const { visionFeatureSelectStrategy, anyres } = this.config;
    const vision = visionOf(this.config);
    const grid = vision.imageSize / vision.patchSize;
    return { tileSize: vision.imageSize, grid, withCls: visionFeatureSelectStrategy === 'full', gridPinpoints: anyres?.gridPinpoints };
  }

  /** The FLOPs shapes of one image's prefill: its real visual token count and the views the vision tower ran. */
  flopsModelFor(image: { count: number; views: number }): FlopsModel {
    const base = this.flopsModel;
    const { qwen } = base.vision;
    // The Qwen2.5 ViT runs on the image's own patches: mergeUnit of them per visual token.
    const patches = qwen ? { tokensPerImage: image.count * qwen.mergeUnit } : {};
    return { ...base, vision: { ...base.vision, images: image.views, ...patches }, visualTokens: image.count };
  }

  /** The shapes the FLOPs counts need for one view's tokens (vision tower run up to the selected feature layer). */
  get flopsModel(): FlopsModel {
    const text = this.manifest.config.text;
    const decoder = {
      numLayers: text.numLayers,
      hidden: text.hiddenSize,
      intermediate: text.intermediateSize,
      numHeads: text.numHeads,
      numKvHeads: text.numKvHeads,
      vocab: text.vocabSize,
    };
    const { qwen } = this;
    if (qwen) {
      const v = qwen.vision;
      const mergeUnit = v.spatialMergeSize ** 2;
      const shape = {
        temporalPatch: v.temporalPatchSize,
        fullLayers: v.fullAttBlockIndexes.length,
        windowPatches: (v.windowSize / v.patchSize) ** 2,
        mergeUnit,
      };
      const tokensPerImage = this.manifest.numVisualTokens * mergeUnit;
      const vision = { layers: v.depth, hidden: v.hiddenSize, intermediate: v.intermediateSize, patchSize: v.patchSize, tokensPerImage };
      return { decoder, vision: { ...vision, images: 1, qwen: shape }, visualTokens: this.manifest.numVisualTokens };
    }
    const { vision, visionFeatureLayer } = this.config;
    // A text-only model runs no tower: its FLOPs are the decoder's alone.
    const v = vision ?? { hiddenSize: 0, intermediateSize: 0, patchSize: 1, imageSize: 0 };
    const grid = v.imageSize / v.patchSize;
    return {
      decoder,
      vision: {
        layers: vision ? visionFeatureLayer : 0,
        hidden: v.hiddenSize,
        intermediate: v.intermediateSize,
        patchSize: v.patchSize,
        tokensPerImage: grid * grid + 1,
        images: vision ? 1 : 0,
      },
      visualTokens: this.manifest.numVisualTokens,
    };
  }

  /** EOS ids: the config's, the tokenizer's, and the pack's generation config, deduplicated. */
  get eosTokenIds(): number[] {
    const ids = [this.manifest.config.eosTokenId, this.tokenizer.eosId, ...this.manifest.extraEosTokenIds];
    return [...new Set(ids.filter((id): id is number => typeof id === 'number'))];
  }

  probe(layer: number): Promise<InferenceSession> {
    let session = this.#probes.get(layer);
    if (!session) {
      session = this.factory.create(join(this.dir, this.manifest.graphs.probes[layer]));
      this.#probes.set(layer, session);
      session.catch(() => this.#probes.delete(layer));
    }
    return session;
  }

  async dispose(): Promise<void> {
    const probes = await Promise.allSettled(this.#probes.values());
    const all = [this.embed, this.vision, this.head, ...this.layers, ...probes.flatMap((p) => (p.status === 'fulfilled' ? [p.value] : []))];
    this.#probes.clear();
    await Promise.allSettled(all.map((s) => s?.release()));
  }
}
