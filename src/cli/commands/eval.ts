import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SPLIT_SEEDS, generateSplit, type Split } from '../../engine/data/dataset.js';
import { readVqaJsonl } from '../../engine/data/vqa.js';
import { VQA_TEST_SPLIT_JSONL } from '../../engine/data/vqa-test-split.js';
import { runEval, type EvalItem } from '../../engine/eval/harness.js';
import { ProgressBar } from '../../engine/eval/progress.js';
import { markdownTable, positionsTable, writeReport } from '../../engine/eval/report.js';
import { CliError, type CliCommand } from '../command.js';
import { methodNamesFromArgs, methodsFromArgs } from '../pruning-options.js';
import { MODEL_USAGE, RUNTIME_USAGE, engineFromArgs, integerArg, modelFromArgs, runtimeOptions } from '../run-options.js';

export const DEFAULT_METHODS = 'none,fastv,pdrop,ttv,iga,random,transprune-high,transprune-low,divprune+transprune';

export const evalCommand: CliCommand = {
  name: 'eval',
  summary: 'exact-match accuracy, TFLOPs and prefill time of pruning methods on a VQA split or JSONL file',
  usage: `eval ${MODEL_USAGE} [--methods ${DEFAULT_METHODS}] [--split test|val|train | --data file.jsonl] [--limit n] [--out dir] [--max-tokens n] [--schedule A/P/R] [--alpha a] [--positions] ${RUNTIME_USAGE}`,
  options: {
    model: { type: 'string' },
    methods: { type: 'string', default: DEFAULT_METHODS },
    split: { type: 'string', default: 'test' },
    data: { type: 'string' },
    limit: { type: 'string' },
    out: { type: 'string', default: 'eval-results' },
    'max-tokens': { type: 'string', default: '16' },
    schedule: { type: 'string' },
    alpha: { type: 'string' },
    positions: { type: 'boolean', default: false },
    ...runtimeOptions,
  },
  async run(args) {
    const { values } = args;
    const out = resolve(String(values.out));
    const limit = values.limit === undefined ? undefined : integerArg(values.limit, '--limit');
    // Each method once, named as given (--methods reads through the same parser as every command's --method).
    const names = methodNamesFromArgs(values);
    if (names.length === 0) throw new CliError('--methods is empty');
    const methods = methodsFromArgs(args).map((spec, i) => ({ name: names[i], spec }));
    const model = modelFromArgs(values);
    const { items, source } = await loadItems(values.data as string | undefined, String(values.split), limit, out);

    const engine = engineFromArgs(values);
    const progress = new ProgressBar('eval', items.length * methods.length);
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once('SIGINT', onSigint);
    try {
      const report = await runEval(engine, {
        model,
        items,
        methods,
        maxTokens: integerArg(values['max-tokens'], '--max-tokens'),
        signal: controller.signal,
        positions: values.positions === true,
        onProgress: (done, total) => progress.update(done, total > 0 ? methods[(done - 1) % methods.length].name : ''),
      });
      const command = `npm run eval -- ${process.argv.slice(3).join(' ')}`.trim();
      const files = await writeReport(out, report, { command, data: source, createdAt: new Date().toISOString() });
      console.log(markdownTable(report));
      if (report.positions) console.log(`\n${positionsTable(report)}`);
      const failed = report.predictions.filter((p) => p.error !== undefined);
      if (failed.length > 0)
        console.error(`\n${failed.length} question(s) got no answer (counted wrong), e.g. ${failed[0].id}: ${failed[0].error}`);
      console.error(`\nwritten: ${files.join(', ')}`);
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
      await engine.unload();
    }
  },
};

/** The items to evaluate: a JSONL file, the committed test split, or a val/train split generated into the output folder. */
async function loadItems(
  data: string | undefined,
  split: string,
  limit: number | undefined,
  out: string,
): Promise<{ items: EvalItem[]; source: string }> {
  let file: string;
  if (data !== undefined) {
    file = resolve(data);
  } else if (split === 'test') {
    file = VQA_TEST_SPLIT_JSONL;
  } else if (split in SPLIT_SEEDS) {
    const folder = join(out, 'data');
    await mkdir(folder, { recursive: true });
    await generateSplit(folder, { split: split as Split, count: limit ?? 300 });
    file = join(folder, `${split}.jsonl`);
  } else {
    throw new CliError(`--split must be one of ${Object.keys(SPLIT_SEEDS).join(', ')}, or give --data file.jsonl`);
  }
  if (!existsSync(file)) throw new CliError(`no such file: ${file}`);
  let items: EvalItem[];
  try {
    items = (await readVqaJsonl(file)).slice(0, limit);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  if (items.length === 0) throw new CliError(`${file} has no items`);
  const missing = items.filter((item) => !existsSync(item.imagePath));
  if (missing.length > 0)
    throw new CliError(
      `${missing.length} image(s) missing, e.g. ${missing
        .slice(0, 3)
        .map((m) => m.imagePath)
        .join(', ')}`,
    );
  return { items, source: file };
}
