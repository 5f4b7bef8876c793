import { resolve } from 'node:path';
import {
  CHECKPOINT_PRESETS,
  CheckpointShapeError,
  makeSyntheticCheckpoint,
  SHAPE_KEYS,
  type CheckpointDtype,
  type CheckpointPreset,
  type CheckpointShape,
} from '../../engine/checkpoint/synthetic.js';
import { isQwenPreset, makeSyntheticQwenCheckpoint, QWEN_CHECKPOINT_PRESETS } from '../../engine/checkpoint/synthetic-qwen.js';
import { CliError, type CliCommand } from '../command.js';
import { integerArg } from '../run-options.js';

/** The shape flags, each overriding one field of the preset: `--kv-heads` sets `kvHeads`. */
const SHAPE_FLAGS = SHAPE_KEYS.map((key) => ({ key, flag: key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`) }));
const PRESETS = [...Object.keys(CHECKPOINT_PRESETS), ...Object.keys(QWEN_CHECKPOINT_PRESETS)].join('|');

const DTYPES: CheckpointDtype[] = ['fp32', 'fp16', 'bf16'];

export const makeCheckpointCommand: CliCommand = {
  name: 'make-checkpoint',
  summary: 'write a random-weight LLaVA-1.5 or Qwen2.5-VL checkpoint folder (for benchmarks and trying the app without a download)',
  usage:
    `make-checkpoint --out DIR [--preset ${PRESETS}] [--layers N] [--hidden D] [--intermediate D] [--heads H] [--kv-heads H]\n` +
    '         [--vision-hidden D] [--vision-intermediate D] [--vision-layers N] [--vision-heads H] [--image-size PX] [--patch-size PX]\n' +
    '         [--vocab V] [--seed S] [--dtype fp32|fp16|bf16] [--shards N (default: files of about 5 GB)] [--layout legacy|new] [--chat-template]\n' +
    '  Weights are written a chunk at a time: a 7B checkpoint needs well under 1 GB of memory to make (fp16: 14 GB on disk).\n' +
    '  Qwen2.5-VL presets (tiny-qwen, qwen2.5-vl-7b) take --seed, --dtype and --shards only.',
  options: {
    out: { type: 'string' },
    preset: { type: 'string', default: 'tiny' },
    ...Object.fromEntries(SHAPE_FLAGS.map(({ flag }) => [flag, { type: 'string' } as const])),
    vocab: { type: 'string' },
    seed: { type: 'string', default: '1' },
    dtype: { type: 'string', default: 'fp32' },
    shards: { type: 'string' },
    layout: { type: 'string', default: 'legacy' },
    'chat-template': { type: 'boolean', default: false },
  },
  async run({ values }) {
    if (!values.out) throw new CliError('--out DIR is required');
    const preset = String(values.preset);
    if (!(preset in CHECKPOINT_PRESETS) && !isQwenPreset(preset))
      throw new CliError(`--preset must be one of ${PRESETS.replaceAll('|', ', ')}`);
    const dtype = String(values.dtype) as CheckpointDtype;
    if (!DTYPES.includes(dtype)) throw new CliError(`--dtype must be one of ${DTYPES.join(', ')}`);
    if (isQwenPreset(preset)) {
      const given = SHAPE_FLAGS.filter(({ flag }) => values[flag] !== undefined).map(({ flag }) => `--${flag}`);
      if (given.length || values.vocab !== undefined)
        throw new CliError(`${preset} has a fixed shape: drop ${[...given, ...(values.vocab ? ['--vocab'] : [])].join(', ')}`);
      const out = resolve(String(values.out));
      const shards = values.shards === undefined ? {} : { shards: integerArg(values.shards, '--shards') };
      const { config } = await makeSyntheticQwenCheckpoint(out, { preset, dtype, seed: integerArg(values.seed, '--seed', 0), ...shards });
      const t = config.text;
      console.log(
        `checkpoint written to ${out}: Qwen2.5-VL, ${t.numLayers} decoder layers, hidden ${t.hiddenSize}, ${t.numHeads} heads (${t.numKvHeads} KV), ` +
          `a ${config.vision.depth}-block ViT, ${dtype} weights`,
      );
      console.log(`import it with: npm run cli -- import ${out}`);
      return 0;
    }
    const layout = String(values.layout);
    if (layout !== 'legacy' && layout !== 'new') throw new CliError('--layout must be legacy or new');
    const shape: Partial<CheckpointShape> = {};
    for (const { key, flag } of SHAPE_FLAGS) if (values[flag] !== undefined) shape[key] = integerArg(values[flag], `--${flag}`);

    const out = resolve(String(values.out));
    let made: Awaited<ReturnType<typeof makeSyntheticCheckpoint>>;
    try {
      made = await makeSyntheticCheckpoint(out, {
        ...shape,
        preset: preset as CheckpointPreset,
        seed: integerArg(values.seed, '--seed', 0),
        dtype,
        ...(values.shards === undefined ? {} : { shards: integerArg(values.shards, '--shards') }),
        ...(values.vocab === undefined ? {} : { vocabSize: integerArg(values.vocab, '--vocab') }),
        layout,
        chatTemplate: values['chat-template'] === true,
      });
    } catch (err) {
      if (err instanceof CheckpointShapeError) throw new CliError(err.message);
      throw err;
    }
    const s = made.shape;
    console.log(
      `checkpoint written to ${out}: ${s.layers} decoder layers, hidden ${s.hidden}, ${s.heads} heads (${s.kvHeads} KV), ` +
        `${made.numVisualTokens} visual tokens, ${dtype} weights`,
    );
    console.log(`import it with: npm run cli -- import ${out}`);
    return 0;
  },
};
