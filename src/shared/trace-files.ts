import { migrateTrace, Trace, TRACE_VERSION } from './trace.js';

/** Trace files: JSON (the schema itself) and two CSV views. Pure functions, no file system. */

export function traceToJson(trace: Trace): string {
  return JSON.stringify(trace, null, 2);
}

/**
 * Parse and validate a trace file. The error says in words what the file is not (prefixes `not a trace
 * file`, `unsupported trace version`, `invalid trace`), naming the first problem.
 */
export function readTrace(text: string): Trace {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`not a trace file: it is not JSON (${(err as Error).message})`);
  }
  const version = data !== null && typeof data === 'object' ? (data as { version?: unknown }).version : undefined;
  if (typeof version !== 'number')
    throw new Error('not a trace file: a pruning trace is a JSON object with a "version" number, and this file has none');
  if (version !== 1 && version !== TRACE_VERSION)
    throw new Error(`unsupported trace version ${version}: this build reads versions 1 to ${TRACE_VERSION}`);
  data = migrateTrace(data);
  const parsed = Trace.safeParse(data);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new Error(`invalid trace: ${first.path.join('.') || '(root)'}: ${first.message}`);
  }
  return parsed.data;
}

/** One row per decoder layer. */
export function traceToLayerCsv(trace: Trace): string {
  const rows = trace.layers.map((l) => [l.layer, l.visualIn, l.seqLen, round(l.timeMs), l.kept?.length ?? '']);
  return csv(['layer', 'visual_in', 'seq_len', 'time_ms', 'kept_after'], rows);
}

/**
 * One row per (layer, visual token) for the layers that carry per-token data (accumulation and
 * pruning layers). `grid_index` is the token's original visual index; `grid_row`, `grid_col` its cell in
 * its view (`kind` base, tile, newline or cls; `tile` indexes image.layout.tiles); `kept` is 1/0 at pruning layers.
 */
export function traceToTokenCsv(trace: Trace): string {
  const layout = trace.image?.layout.tokens;
  const rows: (string | number)[][] = [];
  for (const l of trace.layers) {
    if (!l.tokens) continue;
    const kept = l.kept ? new Set(l.kept) : null;
    l.tokens.forEach((g, i) => {
      rows.push([
        l.layer,
        i,
        g,
        layout?.row[g] ?? '',
        layout?.col[g] ?? '',
        ...[
          l.ttv?.attnRatio,
          l.ttv?.attnCos,
          l.ttv?.mlpRatio,
          l.ttv?.mlpCos,
          l.ttv?.layer,
          l.scores?.ttv,
          l.scores?.attention,
          l.scores?.score,
        ].map((a) => a?.[i] ?? ''),
        kept ? (kept.has(g) ? 1 : 0) : '',
        layout?.kind[g] ?? '',
        layout?.tile[g] ?? '',
      ]);
    });
  }
  return csv(
    [
      'layer',
      'position',
      'grid_index',
      'grid_row',
      'grid_col',
      'attn_ratio',
      'attn_cos',
      'mlp_ratio',
      'mlp_cos',
      'ttv_layer',
      'ttv_acc',
      'attention',
      'score',
      'kept',
      'kind',
      'tile',
    ],
    rows,
  );
}

function csv(header: string[], rows: (string | number)[][]): string {
  return `${[header, ...rows].map((r) => r.join(',')).join('\n')}\n`;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
