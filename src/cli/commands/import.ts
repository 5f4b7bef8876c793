import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { dtypeMemoryNote, importCheckpoint, type ImportDtype, type ImportProgress } from '../../engine/pack/import.js';
import type { LlavaConfig } from '../../engine/model/config.js';
import { WEIGHT_DTYPES, WeightDtype } from '../../shared/dtypes.js';
import { isQwen, type ModelConfig } from '../../engine/model/qwen-config.js';
import { CliError, type CliCommand } from '../command.js';
import { endOpenLine, progressLine } from '../progress-line.js';
import { storeFromArgs } from '../run-options.js';

/** `import`: Hugging Face LLaVA-1.5 or LLaVA-NeXT folder, or a GGUF (with its mmproj) -> model pack in the store. */
export const importCommand: CliCommand = {
  name: 'import',
  summary:
    'turn a Hugging Face LLaVA-1.5 or LLaVA-NeXT checkpoint folder, or a llama.cpp GGUF (plus its mmproj for vision), into a model pack (ONNX graphs) in the model store',
  usage: `import <hf-folder | model.gguf> [--mmproj mmproj.gguf] [--name N] [--dtype keep|${WEIGHT_DTYPES.join('|')}] [--store dir]`,
  options: {
    name: { type: 'string' },
    dtype: { type: 'string' },
    mmproj: { type: 'string' },
    store: { type: 'string' },
  },
  async run(args) {
    const [folder, ...extra] = args.positionals;
    if (!folder || extra.length) throw new CliError(`expected one checkpoint folder or GGUF file\nusage: npm run cli -- ${this.usage}`);
    const asked = args.values.dtype;
    const parsed = asked === undefined || asked === 'keep' ? null : WeightDtype.safeParse(asked);
    if (parsed && !parsed.success)
      throw new CliError(
        `--dtype must be keep (GGUF files: the file's own precision where the engine holds it; their default) or one of ${WEIGHT_DTYPES.join(', ')} (int: decoder and head linears block-quantized, vision linears int8, the rest fp16)`,
      );
    // Absent: keep for a GGUF, fp32 for a folder (the importer's defaults).
    const dtype: ImportDtype | undefined = parsed ? parsed.data : (asked as 'keep' | undefined);
    const mmproj = typeof args.values.mmproj === 'string' ? args.values.mmproj : undefined;
    if (mmproj && !/\.gguf$/i.test(folder)) throw new CliError('--mmproj goes with a GGUF language model file');
    const store = storeFromArgs(args.values);

    const abort = new AbortController();
    const onSigint = () => abort.abort(new Error('cancelled'));
    process.once('SIGINT', onSigint);
    const line = importProgress();
    try {
      const pack = await importCheckpoint(folder, store, {
        name: typeof args.values.name === 'string' ? args.values.name : undefined,
        dtype,
        mmproj,
        signal: abort.signal,
        onProgress: line.update,
      });
      line.done();
      const { config: c, numVisualTokens } = pack.manifest;
      const what = pack.alreadyImported ? 'already imported' : 'imported';
      console.log(`${what}: "${pack.manifest.name}" (id ${pack.manifest.id}, ${pack.manifest.dtype}) at ${pack.dir}`);
      if (pack.replaced) console.log(`  replaced the older import of the same source (id ${pack.replaced.id})`);
      console.log(
        `  text ${c.text.numLayers} layers, d=${c.text.hiddenSize}, ${c.text.numHeads} heads / ${c.text.numKvHeads} KV; ${visionNote(c, numVisualTokens)}`,
      );
      const note = dtypeMemoryNote(pack.manifest.dtype, await weightBytes(pack.dir));
      if (note) console.log(`  note: ${note}`);
      return 0;
    } catch (err) {
      line.done();
      if (abort.signal.aborted) throw new CliError('import cancelled; nothing was written to the store');
      throw new CliError((err as Error).message);
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};

async function weightBytes(dir: string): Promise<number> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.bin'));
  return (await Promise.all(files.map(async (f) => (await stat(join(dir, f))).size))).reduce((a, b) => a + b, 0);
}

/** One self-overwriting progress line on a terminal, one line per stage otherwise (logs, CI). */
function importProgress() {
  const tty = process.stderr.isTTY;
  let lastStage = '';
  return {
    update: (p: ImportProgress) => {
      const text = `${String(Math.round(p.done * 100)).padStart(3)}%  ${p.stage.padEnd(8)} ${p.message}`;
      if (tty) progressLine(text, false);
      else if (p.stage !== lastStage || p.done === 1) process.stderr.write(`${text}\n`);
      lastStage = p.stage;
    },
    done: endOpenLine,
  };
}

function visionNote(config: ModelConfig, numVisualTokens: number): string {
  if (!config.vision) return 'text only (no vision projector)';
  if (isQwen(config))
    return `vision Qwen2.5 ViT (${config.vision.depth} blocks), up to ${numVisualTokens} visual tokens (the image's size decides)`;
  return `vision ${config.vision.imageSize}px, ${numVisualTokens} visual tokens${anyresNote(config)}`;
}

/** LLaVA-NeXT packs: the token count above is per view; how many views an image can become. */
function anyresNote(config: LlavaConfig): string {
  if (!config.anyres) return '';
  const tiles = Math.max(...config.anyres.gridPinpoints.map(([h, w]) => (h * w) / (config.vision?.imageSize ?? 1) ** 2));
  return ` per view (LLaVA-NeXT AnyRes: a base view and up to ${tiles} tiles)`;
}
