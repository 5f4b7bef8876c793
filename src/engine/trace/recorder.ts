import { getOrInsert } from '../../shared/get-or-insert.js';
import { formatMethod, type MethodSpec, type Schedule } from '../../shared/pruning.js';
import { TRACE_VERSION, Trace, type LayerRecord, type ScoreRecord, type TtvRecord } from '../../shared/trace.js';
import { fullFlops, paperFlops, paperLayerFlops, type FlopsModel, type PrefillShape } from '../pruning/flops.js';
import type { MethodRecorder } from '../pruning/method-recorder.js';

/** What the runtime knows before prefill starts. */
export interface TraceMeta {
  model: Trace['model'];
  provider: string;
  image: Trace['image'];
  prompt: Trace['prompt'];
  method: MethodSpec;
  /** Model shapes for the FLOPs counts (LoadedModel.flopsModel). */
  flopsModel: FlopsModel;
}

/**
 * Collects one answer's trace. The runtime writes layer counts, times and the answer; the pruning
 * methods write their per-token components, scores, probes and kept sets. Layers are passed 0-based
 * (the runtime's numbering) and stored 1-based. `finish` computes each layer's FLOPs in both conventions
 * from its recorded token counts and scoring work, once: every FLOPs figure of an answer (stats, inspector,
 * compare, eval, CLI) is read from them. Then it validates the result against the schema.
 */
export class TraceRecorder implements MethodRecorder {
  private readonly layers = new Map<number, LayerRecord>();
  private readonly probes: PrefillShape['probes'] = [];
  private projector?: number[];
  private resolvedSchedule?: Schedule;
  private scoringMs = 0;
  private times = { preprocess: 0, vision: 0, prefill: 0, decode: 0 };

  constructor(private readonly meta: TraceMeta) {}

  // --- runtime ---------------------------------------------------------------------------------

  /** One decoder layer of prefill: visual tokens in the sequence while it ran, sequence length, time. */
  layer(layer: number, visualIn: number, seqLen: number, timeMs: number): void {
    Object.assign(this.at(layer), { visualIn, seqLen, timeMs });
  }

  setTimes(times: Partial<typeof this.times>): void {
    Object.assign(this.times, times);
  }

  finish(result: { answer: string; generatedTokens: number }): Trace {
    const { model, provider, image, prompt, method, flopsModel } = this.meta;
    const layers = Array.from({ length: model.numLayers }, (_, i) => this.layers.get(i + 1) ?? emptyLayer(i + 1));
    const shape: PrefillShape = {
      visualPerLayer: layers.map((l) => l.visualIn),
      seqPerLayer: layers.map((l) => l.seqLen),
      textTokens: prompt.textTokens,
      visionTokens: prompt.visualTokens,
      ttvLayers: layers.filter((l) => l.ttv).map((l) => l.layer),
      probes: this.probes,
      diversity: this.projector !== undefined,
    };
    const unpruned: PrefillShape = {
      ...shape,
      visualPerLayer: layers.map(() => prompt.visualTokens),
      seqPerLayer: undefined,
      ttvLayers: [],
      probes: [],
      diversity: false,
    };
    const { hidden: d, intermediate: m } = flopsModel.decoder;
    const full = fullFlops(shape, flopsModel);
    const measured = layers.map((l, i) => ({ ...l, flops: { paper: paperLayerFlops(l.visualIn, d, m), full: full.layers[i] } }));
    return Trace.parse({
      version: TRACE_VERSION,
      createdAt: new Date().toISOString(),
      model,
      provider,
      image,
      prompt,
      method: { label: formatMethod(method), spec: method, schedule: this.resolvedSchedule },
      projectorKept: this.projector,
      layers: measured,
      totals: {
        flops: {
          paper: measured.reduce((sum, l) => sum + l.flops.paper, 0),
          full: full.total,
          paperUnpruned: paperFlops(unpruned.visualPerLayer, d, m),
          fullUnpruned: fullFlops(unpruned, flopsModel).total,
        },
        timesMs: { ...this.times, scoring: this.scoringMs },
        generatedTokens: result.generatedTokens,
        answer: result.answer,
      },
    });
  }

  // --- pruning methods ---------------------------------------------------------------------------

  /** The schedule the method resolved to after depth scaling and overrides. */
  schedule(schedule: Schedule): void {
    this.resolvedSchedule = schedule;
  }

  projectorKept(indices: Int32Array): void {
    this.projector = Array.from(indices);
  }

  /** Per-token TTV components of the visual tokens (`tokens`: their original grid indices). */
  ttv(layer: number, tokens: Int32Array, ttv: { [K in keyof TtvRecord]: ArrayLike<number> }): void {
    const rec = this.at(layer);
    rec.tokens = Array.from(tokens);
    rec.ttv = Object.fromEntries(Object.entries(ttv).map(([k, v]) => [k, Array.from(v)])) as TtvRecord;
  }

  /** Scores of a pruning layer and the original grid indices it kept. */
  prune(layer: number, tokens: Int32Array, scores: { [K in keyof ScoreRecord]?: ArrayLike<number> }, keptOriginal: Int32Array): void {
    const rec = this.at(layer);
    rec.tokens = Array.from(tokens);
    rec.scores = Object.fromEntries(
      Object.entries(scores)
        .filter(([, v]) => v)
        .map(([k, v]) => [k, Array.from(v!)]),
    ) as ScoreRecord;
    rec.kept = Array.from(keptOriginal);
  }

  /** An attention probe run on 0-based layer `layer`'s output with `queries` query rows (for the full FLOPs). */
  probe(layer: number, queries: number): void {
    this.probes.push({ afterLayer: layer + 1, queries });
  }

  /** Wall time the method spent scoring (probes included), summed over the prefill. */
  addScoringTime(ms: number): void {
    this.scoringMs += ms;
  }

  private at(layer: number): LayerRecord {
    const key = layer + 1;
    return getOrInsert(this.layers, key, () => emptyLayer(key));
  }
}

function emptyLayer(layer: number): LayerRecord {
  return { layer, visualIn: 0, seqLen: 0, timeMs: 0 };
}
