import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downloadCheckpoint } from '../../src/main/features/download.js';
import { ModelImports, type ModelInstaller } from '../../src/main/features/models.js';
import { CATALOGUE } from '../../src/shared/catalogue.js';
import type { Progress } from '../../src/shared/progress.js';
import { startStandInHub, type StandInHub } from '../helpers/stand-in-hub.js';

/** Deterministic bytes that differ everywhere, so a resumed file that skipped or repeated a chunk cannot pass. */
function bytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const REPO = {
  'config.json': Buffer.from('{"model_type":"llava"}'),
  'tokenizer.json': Buffer.from('{"model":{}}'),
  'model-00001-of-00002.safetensors': bytes(3_000_000, 1),
  'model-00002-of-00002.safetensors': bytes(1_500_000, 2),
};

let dir: string;
let hub: StandInHub | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'download-'));
});
afterEach(async () => {
  await hub?.close();
  hub = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function download(faults = {}, signal = new AbortController().signal, wanted?: string[]) {
  hub ??= await startStandInHub({ 'org/model': REPO }, faults);
  const progress: Progress[] = [];
  const dest = join(dir, 'org--model');
  await downloadCheckpoint('org/model', dest, (p) => progress.push(p), signal, hub.url, wanted);
  return { dest, progress };
}

function expectSameFiles(dest: string, names = Object.keys(REPO)) {
  expect(readdirSync(dest).sort()).toEqual([...names].sort());
  for (const name of names) expect(readFileSync(join(dest, name)).equals(REPO[name as keyof typeof REPO])).toBe(true);
}

describe('downloading a checkpoint from the hub', () => {
  it('fetches the checkpoint files (not the README), with progress in bytes up to the listed total', async () => {
    const { dest, progress } = await download();
    expectSameFiles(dest);
    const total = Object.values(REPO).reduce((sum, b) => sum + b.length, 0);
    expect(progress.at(-1)).toMatchObject({ done: total, total });
    expect(progress.every((p, i) => i === 0 || p.done >= progress[i - 1].done)).toBe(true);
    expect(
      progress.some((p) => /^Downloading model-00001-of-00002\.safetensors \(\d of 4\): [\d.]+ MB of 4\.5 MB$/.test(p.message ?? '')),
    ).toBe(true);
  });

  it('resumes a cut connection from the bytes already on disk (a Range request), and the file is exact', async () => {
    const { dest, progress } = await download({ cutAfter: { 'model-00001-of-00002.safetensors': 1_000_000 } });
    expectSameFiles(dest);
    const gets = hub!.requests.filter((r) => r.path.endsWith('model-00001-of-00002.safetensors'));
    expect(gets.map((r) => r.range)).toEqual([undefined, expect.stringMatching(/^bytes=\d+-$/)]);
    expect(Number(/\d+/.exec(gets[1].range!)![0])).toBeGreaterThan(0);
    expect(progress.some((p) => p.message?.endsWith('(connection lost, resuming)'))).toBe(true);
  });

  it('rejects bytes that do not match the listed sha256 and leaves nothing behind', async () => {
    const file = 'model-00002-of-00002.safetensors';
    await expect(download({ corrupt: [file] })).rejects.toThrow(`${file} did not match the hub's checksum`);
    const dest = join(dir, 'org--model');
    expect(existsSync(join(dest, file))).toBe(false);
    expect(existsSync(join(dest, `${file}.part`))).toBe(false);
  });

  it("checks a small file against git's blob id", async () => {
    await expect(download({ corrupt: ['config.json'] })).rejects.toThrow("config.json did not match the hub's checksum");
  });

  it('cancel keeps the partial file, and the next download resumes it', async () => {
    const file = 'model-00001-of-00002.safetensors';
    const controller = new AbortController();
    hub = await startStandInHub({ 'org/model': REPO }, { stallAfter: { [file]: 700_000 } });
    const first = download({}, controller.signal);
    const part = join(dir, 'org--model', `${file}.part`);
    while (!existsSync(part) || statSync(part).size < 700_000) await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    await expect(first).rejects.toThrow('Download cancelled. Download it again to resume where it stopped.');
    expect(statSync(part).size).toBe(700_000);

    await hub.close();
    hub = await startStandInHub({ 'org/model': REPO });
    const { dest } = await download();
    expectSameFiles(dest);
    expect(hub.requests.find((r) => r.path.endsWith(file))?.range).toBe('bytes=700000-');
  });

  it('fetches only the named files of a repo, and says which are missing', async () => {
    const { dest } = await download({}, undefined, ['config.json', 'model-00002-of-00002.safetensors']);
    expectSameFiles(dest, ['config.json', 'model-00002-of-00002.safetensors']);
    await expect(download({}, undefined, ['ggml-model-q4_k.gguf'])).rejects.toThrow('org/model has no ggml-model-q4_k.gguf');
  });
});

describe('the catalogue', () => {
  const installer = {} as ModelInstaller;

  it("lists the hub's exact download size where the repo answers, an estimate where it does not", async () => {
    const gguf = CATALOGUE.find((e) => e.format === 'gguf')!;
    const files = { [gguf.files![0]]: bytes(4000, 3), [gguf.files![1]]: bytes(1000, 4), 'ggml-model-f16.gguf': bytes(9000, 5) };
    hub = await startStandInHub({ [gguf.repoId]: files });
    const sixteenGb = 16 * 1024 ** 3;
    const items = await new ModelImports(installer, () => undefined, dir, hub.url, sixteenGb).catalogue();
    expect(items.map((i) => i.id)).toEqual(CATALOGUE.map((e) => e.id));
    expect(items.find((i) => i.id === gguf.id)!.download).toEqual({ bytes: 5000, files: 2, exact: true });
    const llava7b = items.find((i) => i.id === 'llava-1.5-7b')!;
    expect(llava7b.download).toEqual({ bytes: 7.06e9 * 2, files: 0, exact: false });
    // A 7B on a 16 GB laptop: int4, which fits; a 13B does not fit even at int4.
    expect(llava7b).toMatchObject({ recommended: 'int4', fits: true });
    expect(items.find((i) => i.id === 'llava-1.5-13b')).toMatchObject({ recommended: 'int4', fits: false });
    expect(items.find((i) => i.id === 'qwen2.5-vl-3b')).toMatchObject({ recommended: 'int8', fits: true });
  });
});
