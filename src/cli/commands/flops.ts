import { printTable } from '../table.js';
import { writeFileAtomic } from '../../engine/io/files.js';
import { FLOPS_PRESETS, fullFlops, paperFlops, planPrefill, tera } from '../../engine/pruning/flops.js';
import { formatMethod, planStages, projectorKeep } from '../../shared/pruning.js';
import { CliError, type CliCommand } from '../command.js';
import { methodsFromArgs, pruningOptions } from '../pruning-options.js';

/** `flops`: theoretical prefill FLOPs of methods on a reference model, in both conventions. */
export const flopsCommand: CliCommand = {
  name: 'flops',
  summary: 'prefill TFLOPs of pruning methods on a reference model (paper convention and full count)',
  usage: `flops --preset ${Object.keys(FLOPS_PRESETS).join('|')} --method M [--method M]... [--schedule A/P/R] [--alpha a] [--text-tokens 64] [--instruction-tokens 20] [--json out.json]`,
  options: {
    preset: { type: 'string', default: 'llava-1.5-7b' },
    'text-tokens': { type: 'string', default: '64' },
    'instruction-tokens': { type: 'string', default: '20' },
    json: { type: 'string' },
    method: pruningOptions.method,
    schedule: pruningOptions.schedule,
    alpha: pruningOptions.alpha,
  },
  async run(args) {
    const model = FLOPS_PRESETS[String(args.values.preset)];
    if (!model) throw new CliError(`unknown --preset; known: ${Object.keys(FLOPS_PRESETS).join(', ')}`);
    const prompt = {
      textTokens: count(args.values['text-tokens'], '--text-tokens'),
      instructionTokens: count(args.values['instruction-tokens'], '--instruction-tokens'),
    };
    if (prompt.instructionTokens > prompt.textTokens) throw new CliError('--instruction-tokens cannot exceed --text-tokens');
    const specs = methodsFromArgs(args, 'none');
    const { hidden: d, intermediate: m, numLayers } = model.decoder;
    const baseline = planPrefill({ llm: { kind: 'none' } }, model, prompt);
    const basePaper = paperFlops(baseline.visualPerLayer, d, m);
    const baseFull = fullFlops(baseline, model).total;

    const rows = specs.map((spec) => {
      const shape = planPrefill(spec, model, prompt);
      const entering = projectorKeep(spec, model.visualTokens);
      const tokens = [
        model.visualTokens,
        ...(spec.projector ? [entering] : []),
        ...planStages(spec.llm, numLayers, entering).map((s) => s.keep),
      ];
      const paper = paperFlops(shape.visualPerLayer, d, m);
      const full = fullFlops(shape, model);
      return {
        method: formatMethod(spec),
        tokens,
        paper,
        paperRatio: paper / basePaper,
        full: full.total,
        fullRatio: full.total / baseFull,
        fullBreakdown: full,
      };
    });

    console.log(
      `${args.values.preset}: ${numLayers} layers, d=${d}, m=${m}, N=${model.visualTokens}; full count with ${prompt.textTokens} text tokens`,
    );
    console.log(
      'paper = Eq. 7 multiply-accumulates over visual tokens only (the paper\'s "TFLOPs"); full = FLOPs of the whole prefill incl. vision and overheads\n',
    );
    printTable(
      ['method', 'visual tokens', 'paper TFLOPs', '%', 'full TFLOPs', '%'],
      rows.map((r) => [r.method, r.tokens.join('→'), tera(r.paper), pct(r.paperRatio), tera(r.full), pct(r.fullRatio)]),
    );
    if (args.values.json)
      await writeFileAtomic(String(args.values.json), JSON.stringify({ preset: args.values.preset, prompt, rows }, null, 2));
    return 0;
  },
};

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function count(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CliError(`${flag} must be a whole number`);
  return n;
}
