import { z } from 'zod';

/**
 * Pruning method specs: what the user asks for (CLI string, UI picker, IPC request) and how it
 * resolves against a model's depth. Pure data and pure functions; no node imports.
 *
 * Layer numbers in every spec are 1-BASED, as in the TransPrune paper: "prune 7" means the
 * visual tokens are removed after decoder layer 7 (0-based index 6) has run.
 */

const layerNumber = z.number().int().min(1);
const keepRatio = z.number().gt(0).max(1);

/**
 * A pruning schedule as data. `accumulate`: layers whose TTV is summed; `prune`: layers after which
 * tokens are removed; `ratios[i]`: fraction of the ORIGINAL visual count N kept after `prune[i]`.
 * `depth`: the model depth the layer numbers are written for (presets: 32). When it differs from the
 * model's depth the schedule is scaled by `scaleSchedule`; absent means "absolute, use as written".
 */
export const Schedule = z
  .object({
    accumulate: z.array(layerNumber),
    prune: z.array(layerNumber).min(1),
    ratios: z.array(keepRatio).min(1),
    depth: z.number().int().min(2).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.prune.length !== s.ratios.length) ctx.addIssue({ code: 'custom', message: 'prune and ratios must have the same length' });
    if (!isStrictlyIncreasing(s.prune)) ctx.addIssue({ code: 'custom', message: 'prune layers must be strictly increasing' });
    if (!isStrictlyIncreasing(s.accumulate)) ctx.addIssue({ code: 'custom', message: 'accumulate layers must be strictly increasing' });
    if (s.ratios.some((r, i) => i > 0 && r > s.ratios[i - 1])) ctx.addIssue({ code: 'custom', message: 'keep ratios must not increase' });
  });
export type Schedule = z.infer<typeof Schedule>;

export const PositionPolicy = z.enum(['compact', 'original']);
export type PositionPolicy = z.infer<typeof PositionPolicy>;

/** `code`: the released code's 1 - cos (default); `paper`: Eq. 2's 1 - |cos|. */
export const Direction = z.enum(['code', 'paper']);
export type Direction = z.infer<typeof Direction>;

export const PRESET_NAMES = ['transprune-high', 'transprune-low'] as const;
export const PresetName = z.enum(PRESET_NAMES);
export type PresetName = z.infer<typeof PresetName>;

export const TransPruneSpec = z.object({
  kind: z.literal('transprune'),
  /** The preset the schedule came from; lets a model's manifest override it. */
  preset: PresetName.optional(),
  schedule: Schedule,
  alpha: z.number().min(0).max(1),
  direction: Direction,
  /** Absent: the model's default (positionPolicy). */
  positions: PositionPolicy.optional(),
});
export const FastVSpec = z.object({
  kind: z.literal('fastv'),
  /** Prune after layer K (1-based), ranking by layer K's attention from the last token. */
  k: z.number().int().min(2),
  /** Fraction of the visual tokens removed. */
  r: z.number().min(0).lt(1),
  /** Absent: the model's default (positionPolicy). */
  positions: PositionPolicy.optional(),
});
export const PDropSpec = z.object({
  kind: z.literal('pdrop'),
  /** The decoder is split into `stages` equal parts; each boundary keeps `lambda` of the previous count. */
  stages: z.number().int().min(2),
  lambda: z.number().gt(0).max(1),
  /** Absent: the model's default (positionPolicy). */
  positions: PositionPolicy.optional(),
});
export const RandomSpec = z.object({
  kind: z.literal('random'),
  seed: z.number().int().min(0),
  /** Only `prune`/`ratios` matter: the same budget as that schedule, uniformly random tokens. */
  schedule: Schedule,
  preset: PresetName.optional(),
  /** Absent: the model's default (positionPolicy). */
  positions: PositionPolicy.optional(),
});
export const NoneSpec = z.object({ kind: z.literal('none') });
export type TransPruneSpec = z.infer<typeof TransPruneSpec>;

export const LlmMethodSpec = z.discriminatedUnion('kind', [NoneSpec, TransPruneSpec, FastVSpec, PDropSpec, RandomSpec]);
export type LlmMethodSpec = z.infer<typeof LlmMethodSpec>;

/** Projector-side DivPrune: keep `count` tokens, or floor(N * ratio). */
export const DivPruneSpec = z
  .object({
    kind: z.literal('divprune'),
    count: z.number().int().min(1).optional(),
    ratio: keepRatio.optional(),
  })
  .refine((s) => (s.count === undefined) !== (s.ratio === undefined), 'divprune needs exactly one of count or ratio');
export type DivPruneSpec = z.infer<typeof DivPruneSpec>;

/** A whole request: an optional projector-side selection followed by an in-LLM method. */
export const MethodSpec = z.object({ projector: DivPruneSpec.optional(), llm: LlmMethodSpec });
export type MethodSpec = z.infer<typeof MethodSpec>;

/** Per-model overrides from a model pack's manifest (`manifest.pruning`): preset name -> schedule. */
export const PruningOverrides = z.object({ presets: z.partialRecord(PresetName, Schedule).optional() });
export type PruningOverrides = z.infer<typeof PruningOverrides>;

// ---------------------------------------------------------------------------------------------
// Presets (32-layer LLaVA-1.5 numbers; method spec §4.3)

export const PRESET_SCHEDULES: Record<PresetName, Schedule> = {
  /** 576 -> 504 -> 360 -> 72 on LLaVA-1.5 (the released scripts). */
  'transprune-high': { accumulate: range(7, 12), prune: [7, 9, 12], ratios: [0.875, 0.625, 0.125], depth: 32 },
  /** 576 -> 360 -> 108 -> 36: the only 1/16-grid triple matching both 1.19 and 6.41 TFLOPs (spec §4.3; an inference). */
  'transprune-low': { accumulate: range(7, 12), prune: [7, 9, 12], ratios: [0.625, 0.1875, 0.0625], depth: 32 },
};

export const DEFAULTS = {
  alpha: 0.5,
  direction: 'code',
  positions: 'compact',
  fastv: { k: 2, r: 0.5 },
  pdrop: { stages: 4, lambda: 0.5 },
  seed: 0,
} as const;

export function transprune(preset: PresetName, alpha: number = DEFAULTS.alpha): TransPruneSpec {
  return {
    kind: 'transprune',
    preset,
    schedule: PRESET_SCHEDULES[preset],
    alpha,
    direction: DEFAULTS.direction,
  };
}

// ---------------------------------------------------------------------------------------------
// Depth scaling

/**
 * Scale a schedule written for `schedule.depth` layers to a model of `numLayers` layers.
 *
 * Rules (all layer numbers 1-based):
 * 1. A layer number l becomes max(1, round(l * numLayers / depth)), halves rounding up.
 * 2. Prune layers stay strictly increasing (a collision moves the later one up by one) and end at
 *    numLayers - 1 at the latest (the IGA probe needs layer p + 1; pruning after the last layer is
 *    pointless); if the top is exceeded they are packed downwards from numLayers - 1.
 * 3. Each contiguous run a..b of accumulation layers becomes the full run scaled(a)..scaled(b), so
 *    upscaling leaves no holes; every prune layer that was inside the accumulation set stays inside.
 * Ratios are unchanged. With numLayers = depth the schedule is returned unchanged.
 * Example (transprune-high): 12 layers -> accumulate 3-5, prune 3,4,5; 16 -> 4-6 / 4,5,6; 24 -> 5-9 / 5,7,9.
 */
export function scaleSchedule(schedule: Schedule, numLayers: number): Schedule {
  const depth = schedule.depth ?? numLayers;
  const { depth: _written, ...rest } = schedule;
  if (depth === numLayers) return checkFits(rest, numLayers);
  if (numLayers < schedule.prune.length + 1)
    throw new Error(`a ${numLayers}-layer model cannot hold ${schedule.prune.length} pruning layers`);
  const scale = (l: number) => Math.max(1, Math.floor((l * numLayers) / depth + 0.5));

  const prune = schedule.prune.map(scale);
  for (let i = 1; i < prune.length; i++) prune[i] = Math.max(prune[i], prune[i - 1] + 1);
  for (let i = prune.length - 1; i >= 0; i--) prune[i] = Math.min(prune[i], numLayers - 1 - (prune.length - 1 - i));

  const accumulate = new Set<number>();
  for (const [a, b] of contiguousRuns(schedule.accumulate)) for (let l = scale(a); l <= scale(b); l++) accumulate.add(l);
  schedule.prune.forEach((p, i) => {
    if (schedule.accumulate.includes(p)) accumulate.add(prune[i]);
  });
  return { ...rest, prune, accumulate: [...accumulate].filter((l) => l <= numLayers).sort((x, y) => x - y) };
}

/** Validate that an absolute schedule fits a model: every layer exists and the IGA probe layer p+1 exists. */
function checkFits(schedule: Schedule, numLayers: number): Schedule {
  const last = schedule.prune[schedule.prune.length - 1];
  if (last > numLayers - 1) throw new Error(`prune layer ${last} needs layer ${last + 1}, but the model has ${numLayers} layers`);
  const lastAcc = schedule.accumulate[schedule.accumulate.length - 1];
  if (lastAcc !== undefined && lastAcc > numLayers)
    throw new Error(`accumulation layer ${lastAcc} exceeds the model's ${numLayers} layers`);
  return schedule;
}

// ---------------------------------------------------------------------------------------------
// Resolution against a model: every method becomes a list of pruning stages.

/** One pruning event: after 1-based layer `afterLayer`, keep `keep` visual tokens. */
export interface Stage {
  afterLayer: number;
  keep: number;
}

/**
 * k = floor(N * r), of the ORIGINAL count N entering the LLM (method spec §4.2). Clamped to >= 1 so
 * that a tiny model never ends up with an empty visual block (never triggers for N >= 16 and r >= 1/16).
 */
export function keepCount(n: number, ratio: number): number {
  return Math.max(1, Math.min(n, Math.floor(n * ratio)));
}

/**
 * The schedule a TransPrune or random spec uses on a model. A spec that names a `preset` carries that
 * preset's schedule, which the model's manifest may override; a request's own schedule (`--schedule`,
 * which clears `preset`) is used as given. Either way it is then scaled to the model's depth.
 */
export function resolveSchedule(
  spec: { schedule: Schedule; preset?: PresetName },
  numLayers: number,
  overrides?: PruningOverrides,
): Schedule {
  const override = spec.preset ? overrides?.presets?.[spec.preset] : undefined;
  return scaleSchedule(override ?? spec.schedule, numLayers);
}

/** A pruning stage before the count entering the LLM is known: after 1-based layer `afterLayer`, keep `ratio` of that count. */
export interface StageRatio {
  afterLayer: number;
  ratio: number;
}

/** The pruning stages of an in-LLM method on a model of `numLayers` layers; throws when the method does not fit the model. */
export function resolveStages(spec: LlmMethodSpec, numLayers: number, overrides?: PruningOverrides): StageRatio[] {
  switch (spec.kind) {
    case 'none':
      return [];
    case 'transprune':
    case 'random': {
      const s = resolveSchedule(spec, numLayers, overrides);
      return s.prune.map((afterLayer, i) => ({ afterLayer, ratio: s.ratios[i] }));
    }
    case 'fastv':
      if (spec.k > numLayers - 1) throw new Error(`fastv K=${spec.k} needs more than ${numLayers} layers`);
      return [{ afterLayer: spec.k, ratio: 1 - spec.r }];
    case 'pdrop':
      return pdropLayers(spec.stages, numLayers).map((afterLayer, i) => ({ afterLayer, ratio: spec.lambda ** (i + 1) }));
  }
}

/** The pruning stages of an in-LLM method on a model of `numLayers` layers with N visual tokens entering. */
export function planStages(spec: LlmMethodSpec, numLayers: number, n: number, overrides?: PruningOverrides): Stage[] {
  return resolveStages(spec, numLayers, overrides).map(({ afterLayer, ratio }) => ({ afterLayer, keep: keepCount(n, ratio) }));
}

/** PDrop's stage boundaries: after layers round(L * s / stages), s = 1..stages-1 (8, 16, 24 for 32 layers). */
export function pdropLayers(stages: number, numLayers: number): number[] {
  if (stages > numLayers) throw new Error(`pdrop cannot split ${numLayers} layers into ${stages} stages`);
  return Array.from({ length: stages - 1 }, (_, i) => Math.floor((numLayers * (i + 1)) / stages + 0.5));
}

/** Visual tokens entering each decoder layer (length numLayers), given the count entering the LLM. */
export function visualCountsPerLayer(stages: Stage[], numLayers: number, n: number): number[] {
  const counts: number[] = [];
  let current = n;
  for (let layer = 1; layer <= numLayers; layer++) {
    counts.push(current);
    const stage = stages.find((s) => s.afterLayer === layer);
    if (stage) current = stage.keep;
  }
  return counts;
}

/** Count of visual tokens the projector-side method passes to the LLM (N itself when there is none); round(r·N) as DivPrune. */
export function projectorKeep(spec: MethodSpec, n: number): number {
  const p = spec.projector;
  if (!p) return n;
  return Math.min(n, p.count ?? Math.max(1, Math.round(n * p.ratio!)));
}

/** Position policy the runtime applies after a prune. */
export function positionPolicy(spec: LlmMethodSpec, model: { mrope?: boolean } = {}): PositionPolicy {
  if (spec.kind === 'none') return 'compact';
  // FastV's in-place code keeps the kept tokens' original positions; on M-RoPE models (Qwen2.5-VL) a kept token keeps
  // its own (t, h, w) position by default, since compacting a 2D grid into a line has no spatial meaning.
  return spec.positions ?? (spec.kind === 'fastv' || model.mrope ? 'original' : DEFAULTS.positions);
}

// ---------------------------------------------------------------------------------------------
// CLI strings

/**
 * Parse a method string: `none`, `transprune-high`, `transprune-low`, `transprune` (= high), `ttv`,
 * `iga` (high schedule with alpha 1 / 0), `fastv[:k=2,r=0.5]`, `pdrop[:stages=4,lambda=0.5]`,
 * `random[:seed=0,preset=transprune-high]`, `divprune:count=144` or `divprune:ratio=0.5`, and a projector
 * method combined with an in-LLM one: `divprune:ratio=0.5+transprune-high`. Options after `:` apply to
 * the method they follow; transprune variants also take `alpha`, `direction` (code|paper) and
 * `positions` (compact|original). A schedule can be attached with `@`: `transprune@7-12/7,9,12/0.875,0.625,0.125`
 * (absolute layers, as `--schedule`); that is also how formatMethod writes a spec without a preset.
 */
export function parseMethod(text: string): MethodSpec {
  const parts = text
    .trim()
    .split('+')
    .map((p) => p.trim());
  if (parts.length > 2 || parts.some((p) => p === '')) throw new Error(`bad method "${text}"`);
  const [first, second] = parts;
  if (parseName(first).name === 'divprune') {
    return MethodSpec.parse({ projector: parseDivPrune(first), llm: second ? parseLlmMethod(second) : { kind: 'none' } });
  }
  if (second) throw new Error(`"${text}": only a projector-side method (divprune) can come before "+"`);
  return MethodSpec.parse({ llm: parseLlmMethod(first) });
}

/** Parse `--schedule accumulate/prune/ratios`, e.g. `7-12/7,9,12/0.875,0.625,0.125` (1-based, absolute layers). */
export function parseSchedule(text: string): Schedule {
  const fields = text.split('/');
  if (fields.length !== 3) throw new Error(`bad schedule "${text}": expected accumulate/prune/ratios, e.g. 7-12/7,9,12/0.875,0.625,0.125`);
  const [acc, prune, ratios] = fields;
  return Schedule.parse({ accumulate: parseLayerList(acc), prune: parseLayerList(prune), ratios: ratios.split(',').map(parseNumber) });
}

/** Canonical text form; `parseMethod(formatMethod(s))` gives back an equivalent spec. */
export function formatMethod(spec: MethodSpec): string {
  const llm = formatLlm(spec.llm);
  if (!spec.projector) return llm;
  const p = spec.projector;
  const div = p.count !== undefined ? `divprune:count=${p.count}` : `divprune:ratio=${p.ratio}`;
  return spec.llm.kind === 'none' ? div : `${div}+${llm}`;
}

/** Replace the schedule and/or alpha of a parsed method (the `--schedule` / `--alpha` CLI options). */
export function withOverrides(spec: MethodSpec, o: { schedule?: Schedule; alpha?: number }): MethodSpec {
  const llm = spec.llm;
  if (o.alpha !== undefined && llm.kind !== 'transprune') throw new Error(`--alpha applies to transprune methods, not ${llm.kind}`);
  if (o.schedule !== undefined && llm.kind !== 'transprune' && llm.kind !== 'random')
    throw new Error(`--schedule applies to transprune and random, not ${llm.kind}`);
  if (llm.kind !== 'transprune' && llm.kind !== 'random') return spec;
  const next = {
    ...llm,
    ...(o.schedule ? { schedule: o.schedule, preset: undefined } : {}),
    ...(o.alpha !== undefined ? { alpha: o.alpha } : {}),
  };
  return MethodSpec.parse({ ...spec, llm: next });
}

function parseLlmMethod(part: string): LlmMethodSpec {
  const { name, schedule, options } = parseName(part);
  if (schedule && !['transprune', 'ttv', 'iga', 'random'].includes(name)) throw new Error(`"${name}" takes no @schedule`);
  const take = (key: string) => {
    const v = options.get(key);
    options.delete(key);
    return v;
  };
  const num = (key: string, fallback: number) => {
    const v = take(key);
    return v === undefined ? fallback : parseNumber(v);
  };
  /** Only when given: absent means the model's default (positionPolicy). */
  const positions = () => {
    const given = take('positions');
    return given === undefined ? {} : { positions: PositionPolicy.parse(given) };
  };
  let spec: LlmMethodSpec;
  switch (name) {
    case 'none':
      spec = { kind: 'none' };
      break;
    case 'transprune':
    case 'transprune-high':
    case 'transprune-low':
    case 'ttv':
    case 'iga': {
      const preset: PresetName = name === 'transprune-low' ? 'transprune-low' : 'transprune-high';
      const alpha = name === 'ttv' ? 1 : name === 'iga' ? 0 : num('alpha', DEFAULTS.alpha);
      spec = {
        ...transprune(preset, alpha),
        direction: Direction.parse(take('direction') ?? DEFAULTS.direction),
        ...positions(),
      };
      break;
    }
    case 'fastv':
      spec = { kind: 'fastv', k: num('k', DEFAULTS.fastv.k), r: num('r', DEFAULTS.fastv.r), ...positions() };
      break;
    case 'pdrop':
      spec = {
        kind: 'pdrop',
        stages: num('stages', DEFAULTS.pdrop.stages),
        lambda: num('lambda', DEFAULTS.pdrop.lambda),
        ...positions(),
      };
      break;
    case 'random': {
      const preset = PresetName.parse(take('preset') ?? 'transprune-high');
      spec = {
        kind: 'random',
        seed: num('seed', DEFAULTS.seed),
        schedule: PRESET_SCHEDULES[preset],
        preset,
        ...positions(),
      };
      break;
    }
    default:
      throw new Error(`unknown method "${name}"; known: none, transprune-high, transprune-low, ttv, iga, fastv, pdrop, random, divprune`);
  }
  if (options.size > 0) throw new Error(`unknown option(s) for ${name}: ${[...options.keys()].join(', ')}`);
  if (schedule && (spec.kind === 'transprune' || spec.kind === 'random'))
    spec = { ...spec, schedule: parseSchedule(schedule), preset: undefined };
  return LlmMethodSpec.parse(spec);
}

const DEFAULT_DIVPRUNE_RATIO = 0.5;

function parseDivPrune(part: string): DivPruneSpec {
  const { options } = parseName(part);
  const count = options.get('count');
  const ratio = options.get('ratio');
  for (const key of options.keys()) if (key !== 'count' && key !== 'ratio') throw new Error(`unknown option for divprune: ${key}`);
  // Bare `divprune` keeps half, the 288-of-576 setting of the paper's Tables 4-5.
  const defaultRatio = count === undefined && ratio === undefined ? DEFAULT_DIVPRUNE_RATIO : undefined;
  return DivPruneSpec.parse({
    kind: 'divprune',
    count: count === undefined ? undefined : parseNumber(count),
    ratio: ratio === undefined ? defaultRatio : parseNumber(ratio),
  });
}

function parseName(part: string): { name: string; schedule?: string; options: Map<string, string> } {
  const [head, rest] = part.split(':', 2) as [string, string | undefined];
  const [name, schedule] = head.split('@', 2) as [string, string | undefined];
  const options = new Map<string, string>();
  for (const kv of rest ? rest.split(',') : []) {
    const [key, value] = kv.split('=');
    if (!key || value === undefined) throw new Error(`bad option "${kv}" in "${part}": expected key=value`);
    options.set(key.trim(), value.trim());
  }
  return { name: name.trim().toLowerCase(), schedule: schedule?.trim(), options };
}

function formatLlm(llm: LlmMethodSpec): string {
  switch (llm.kind) {
    case 'none':
      return 'none';
    case 'fastv':
      return `fastv:k=${llm.k},r=${llm.r}${positionsSuffix(llm.positions)}`;
    case 'pdrop':
      return `pdrop:stages=${llm.stages},lambda=${llm.lambda}${positionsSuffix(llm.positions)}`;
    case 'random': {
      const base = llm.preset ? 'random' : `random@${formatSchedule(llm.schedule)}`;
      return `${base}:seed=${llm.seed}${llm.preset && llm.preset !== 'transprune-high' ? `,preset=${llm.preset}` : ''}${positionsSuffix(llm.positions)}`;
    }
    case 'transprune': {
      const alias =
        llm.preset === 'transprune-high' && (llm.alpha === 1 || llm.alpha === 0) ? (llm.alpha === 1 ? 'ttv' : 'iga') : undefined;
      const base = alias ?? llm.preset ?? `transprune@${formatSchedule(llm.schedule)}`;
      const opts = [
        llm.alpha !== DEFAULTS.alpha && !alias ? `alpha=${llm.alpha}` : '',
        llm.direction !== DEFAULTS.direction ? `direction=${llm.direction}` : '',
        llm.positions ? `positions=${llm.positions}` : '',
      ].filter(Boolean);
      return opts.length ? `${base}:${opts.join(',')}` : base;
    }
  }
}

/** The `--schedule` text of a schedule (inverse of parseSchedule; `depth` is not part of it). */
export function formatSchedule(s: Schedule): string {
  const runs = contiguousRuns(s.accumulate).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`));
  return `${runs.join(',')}/${s.prune.join(',')}/${s.ratios.join(',')}`;
}

const positionsSuffix = (p: PositionPolicy | undefined) => (p ? `,positions=${p}` : '');

function parseLayerList(text: string): number[] {
  if (text.trim() === '') return [];
  return text.split(',').flatMap((item) => {
    const [a, b] = item.split('-').map(parseNumber);
    return b === undefined ? [a] : range(a, b);
  });
}

function parseNumber(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new Error(`"${text}" is not a number`);
  return value;
}

function contiguousRuns(layers: number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const l of layers) {
    const last = runs[runs.length - 1];
    if (last && l === last[1] + 1) last[1] = l;
    else runs.push([l, l]);
  }
  return runs;
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

function isStrictlyIncreasing(xs: number[]): boolean {
  return xs.every((x, i) => i === 0 || x > xs[i - 1]);
}
