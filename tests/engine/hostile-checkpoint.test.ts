import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { listPacks } from '../../src/engine/pack/store.js';
import { encodeChat, renderChat } from '../../src/engine/text/chat.js';
import { TextTokenizer } from '../../src/engine/text/tokenizer.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

/**
 * Checkpoints built to hurt: symlinks that reach outside the folder, a tokenizer whose Split pattern
 * backtracks exponentially, a chat template that loops for ever. Each is refused at import with a
 * message naming the file, within seconds; the same parts loaded anyway stop at their time budget.
 */

const root = mkdtempSync(join(tmpdir(), 'tp-hostile-'));
let clean: string;
const store = join(root, 'store');

/** A copy of the clean tiny checkpoint, changed by `edit`. */
function variant(name: string, edit: (dir: string) => void): string {
  const dir = join(root, name);
  cpSync(clean, dir, { recursive: true });
  edit(dir);
  return dir;
}

const editJson = (path: string, edit: (json: { pre_tokenizer: unknown }) => void) => {
  const json = JSON.parse(readFileSync(path, 'utf8'));
  edit(json);
  writeFileSync(path, JSON.stringify(json));
};

/** `([^x]*)*x` takes seconds for 26 characters without an x and doubles with every 2 more. */
const CATASTROPHIC_SPLIT = { type: 'Split', pattern: { Regex: '([^x]*)*x' }, behavior: 'Isolated', invert: false };
const ENDLESS_TEMPLATE = '{% for i in range(10000000) %}{% for j in range(10000000) %}{{ "" }}{% endfor %}{% endfor %}';

beforeAll(async () => {
  clean = (await makeSyntheticCheckpoint(join(root, 'clean'))).dir;
}, 60_000);

describe('symlinks in an imported folder', () => {
  it('refuses a chat template linked to a file outside the folder, naming it', async () => {
    const secret = join(root, 'secret.txt');
    writeFileSync(secret, 'ssh-ed25519 AAAA private');
    const dir = variant('linked-template', (d) => symlinkSync(secret, join(d, 'chat_template.jinja')));
    await expect(importCheckpoint(dir, store)).rejects.toThrow(
      /chat_template\.jinja is a link to .*secret\.txt, outside the checkpoint folder/,
    );
    expect(await listPacks(store)).toEqual([]);
  });

  it('refuses a dangling link and a link to a sibling folder', async () => {
    const dangling = variant('dangling', (d) => symlinkSync(join(root, 'nowhere'), join(d, 'chat_template.json')));
    await expect(importCheckpoint(dangling, store)).rejects.toThrow(/chat_template\.json is a link to a missing file/);
    const sibling = variant('sibling', (d) => {
      renameSync(join(d, 'tokenizer.json'), join(root, 'tokenizer.json'));
      symlinkSync(join(root, 'tokenizer.json'), join(d, 'tokenizer.json'));
    });
    await expect(importCheckpoint(sibling, store)).rejects.toThrow(/tokenizer\.json is a link .*outside the checkpoint folder/);
  });

  it("accepts the Hugging Face cache's own layout: snapshots/<rev>/<file> -> ../../blobs/<sha>", async () => {
    const repo = join(root, 'hub', 'models--tiny');
    const snapshot = join(repo, 'snapshots', 'abc123');
    mkdirSync(snapshot, { recursive: true });
    mkdirSync(join(repo, 'blobs'));
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json']) {
      cpSync(join(clean, file), join(repo, 'blobs', `sha-${file}`));
      symlinkSync(join('..', '..', 'blobs', `sha-${file}`), join(snapshot, file));
    }
    const imported = await importCheckpoint(snapshot, join(root, 'hub-store'));
    expect(imported.alreadyImported).toBe(false);
  });
});

describe('a tokenizer whose pattern backtracks without end', () => {
  let dir: string;
  beforeAll(() => {
    dir = variant('catastrophic-regex', (d) =>
      editJson(join(d, 'tokenizer.json'), (json) => {
        json.pre_tokenizer = { type: 'Sequence', pretokenizers: [CATASTROPHIC_SPLIT, json.pre_tokenizer] };
      }),
    );
  });

  it('is refused at import within seconds, naming tokenizer.json', async () => {
    const start = performance.now();
    await expect(importCheckpoint(dir, store)).rejects.toThrow(
      /refused at import: The model's tokenizer \(tokenizer\.json\) took longer than 2000 ms/,
    );
    expect(performance.now() - start).toBeLessThan(10_000);
    expect(await listPacks(store)).toEqual([]);
  });

  it('stops at its budget when loaded anyway, and the process goes on', async () => {
    const tokenizer = await TextTokenizer.load(dir);
    const start = performance.now();
    expect(() => tokenizer.encode('a'.repeat(60), { budgetMs: 300 })).toThrow(/took longer than 300 ms to split 60 characters/);
    expect(performance.now() - start).toBeLessThan(2_000);
    expect(tokenizer.encode('x')).toEqual(expect.any(Array));
  });
});

describe('a chat template that loops for ever', () => {
  it('is refused at import within seconds', async () => {
    const dir = variant('endless-template', (d) => writeFileSync(join(d, 'chat_template.jinja'), ENDLESS_TEMPLATE));
    const start = performance.now();
    await expect(importCheckpoint(dir, store)).rejects.toThrow(/refused at import: The model's chat template took longer than 2000 ms/);
    expect(performance.now() - start).toBeLessThan(10_000);
  });

  it('stops at its budget at ask time with a message saying what to do', async () => {
    const tokenizer = await TextTokenizer.load(clean);
    const turns = [{ role: 'user' as const, text: 'hi', image: true }];
    expect(() => renderChat(turns, { template: ENDLESS_TEMPLATE, budgetMs: 300 })).toThrow(
      /chat template took longer than 300 ms .* Re-import the model/,
    );
    // The same tokenizer still encodes with a good template afterwards.
    expect(encodeChat(tokenizer, turns, { imageTokenId: tokenizer.tokenToId('<image>')! }).ids.length).toBeGreaterThan(2);
  });
});

describe('clean checkpoints', () => {
  it('still import (the probes pass quickly)', async () => {
    const start = performance.now();
    const imported = await importCheckpoint(clean, join(root, 'clean-store'));
    expect(imported.alreadyImported).toBe(false);
    expect(performance.now() - start).toBeLessThan(20_000);
    rmSync(join(root, 'clean-store'), { recursive: true });
  });
});
