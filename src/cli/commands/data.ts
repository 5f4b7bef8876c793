import { resolve } from 'node:path';
import { CliError, type CliCommand } from '../command.js';
import { integerArg } from '../run-options.js';
import { SPLIT_SEEDS, generateSplit, type Split } from '../../engine/data/dataset.js';
import { ProgressBar } from '../../engine/eval/progress.js';

export const dataCommand: CliCommand = {
  name: 'data',
  summary: 'generate the synthetic VQA dataset (images + JSONL in the LLaVA eval format)',
  usage: 'data --split train|val|test --count N --out DIR [--start I] [--per-image K] [--format jpeg|png] [--quality Q] [--scenes]',
  options: {
    split: { type: 'string', default: 'test' },
    count: { type: 'string', default: '300' },
    out: { type: 'string' },
    start: { type: 'string', default: '0' },
    'per-image': { type: 'string', default: '1' },
    format: { type: 'string', default: 'jpeg' },
    quality: { type: 'string' },
    scenes: { type: 'boolean', default: false },
  },
  async run({ values }) {
    const split = values.split as string;
    if (!(split in SPLIT_SEEDS)) throw new CliError(`--split must be one of ${Object.keys(SPLIT_SEEDS).join(', ')}`);
    if (!values.out) throw new CliError('--out DIR is required');
    const format = values.format as string;
    if (format !== 'jpeg' && format !== 'png') throw new CliError('--format must be jpeg or png');
    const count = integerArg(values.count, '--count');
    const out = resolve(values.out as string);
    const progress = new ProgressBar(`data ${split}`, count);
    const items = await generateSplit(
      out,
      {
        split: split as Split,
        count,
        start: integerArg(values.start, '--start', 0),
        questionsPerImage: integerArg(values['per-image'], '--per-image'),
        format,
        quality: values.quality === undefined ? undefined : integerArg(values.quality, '--quality'),
        scenes: values.scenes === true,
      },
      (done) => progress.update(done),
    );
    console.log(`${items.length} questions on ${count} images written to ${out}`);
    return 0;
  },
};
