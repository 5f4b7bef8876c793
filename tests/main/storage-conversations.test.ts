import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONVERSATION_SCHEMA_VERSION, type AssistantMessage } from '../../src/shared/conversation.js';
import { ConversationStore, DEFAULT_TITLE, openStorage, StorageError } from '../../src/main/storage/index.js';
import { DEFAULT_SETTINGS } from '../../src/shared/settings.js';
import { migrate, UnsupportedSchemaError, type Migration } from '../../src/main/storage/migrations.js';

let dir: string;
let clock: number;
let store: ConversationStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tp-conv-'));
  clock = 1_000;
  store = new ConversationStore(dir, () => clock++);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const assistantAt = async (id: string, index: number) => (await store.get(id)).messages[index] as AssistantMessage;

describe('conversation store', () => {
  it('creates one JSON file per conversation with the schema version', async () => {
    const c = await store.create('Cats');
    const onDisk = JSON.parse(await readFile(join(dir, `${c.id}.json`), 'utf8'));
    expect(onDisk).toMatchObject({ schemaVersion: CONVERSATION_SCHEMA_VERSION, id: c.id, title: 'Cats', messages: [] });
  });

  it('lists by most recently updated, renames, deletes', async () => {
    const a = await store.create('Alpha');
    const b = await store.create('Beta');
    expect((await store.list()).map((c) => c.title)).toEqual(['Beta', 'Alpha']);
    await store.rename(a.id, '  Alpha   renamed ');
    expect((await store.list()).map((c) => c.title)).toEqual(['Alpha renamed', 'Beta']);
    await store.delete(b.id);
    expect((await store.list()).map((c) => c.id)).toEqual([a.id]);
    await expect(store.get(b.id)).rejects.toMatchObject({ problem: 'not-found' });
    await expect(store.rename(a.id, '   ')).rejects.toMatchObject({ problem: 'invalid' });
  });

  it('searches titles case-insensitively by every word', async () => {
    await store.create('Red bicycle by the lake');
    await store.create('Receipt totals');
    await store.create('A lake at night');
    const titles = async (q: string) => (await store.search(q)).map((c) => c.title).sort();
    expect(await titles('LAKE')).toEqual(['A lake at night', 'Red bicycle by the lake']);
    expect(await titles('lake red')).toEqual(['Red bicycle by the lake']);
    expect(await titles('')).toHaveLength(3);
    expect(await titles('zebra')).toEqual([]);
  });

  it('searches inside messages too: questions, every answer version and comparisons, with the words around the match', async () => {
    const bike = await store.create('Red bicycle by the lake');
    const receipts = await store.create('Receipts');
    await store.addUserMessage(receipts.id, 'What is the total on the grocery receipt from Tuesday?');
    const answered = await store.create('Shapes');
    await store.addUserMessage(answered.id, 'What is here?');
    const target = await store.startAnswer(answered.id);
    await store.finishAnswer(target, { status: 'done', text: 'A green triangle next to a small blue hexagon.' });
    const compared = await store.create('Compared');
    const id = await store.addComparison(compared.id, 'Which one?', [], { left: 'none', right: 'fastv' });
    await store.finishComparedAnswer(compared.id, id, 'right', { status: 'done', text: 'The zebra on the left.' });
    const found = async (q: string) => (await store.search(q)).map((c) => [c.title, c.match]);
    expect(await found('grocery tuesday')).toEqual([['Receipts', 'What is the total on the grocery receipt from Tuesday?']]);
    expect(await found('HEXAGON')).toEqual([['Shapes', 'A green triangle next to a small blue hexagon.']]);
    expect(await found('zebra')).toEqual([['Compared', 'The zebra on the left.']]);
    expect(await found('lake')).toEqual([['Red bicycle by the lake', undefined]]); // in the title: no snippet needed
    expect(bike.id).toBeDefined();
    // A long message is cut around the match.
    await store.addUserMessage(receipts.id, `${'before '.repeat(30)}needle${' after'.repeat(30)}`);
    const [long] = await store.search('needle');
    expect(long.match).toMatch(/^….* before needle after .*…$/);
    expect(long.match!.length).toBeLessThanOrEqual(62);
  });

  it('titles an untitled conversation from its first question', async () => {
    const c = await store.create();
    expect(c.title).toBe(DEFAULT_TITLE);
    await store.addUserMessage(c.id, 'What   colour is the car?\nAnd the door?');
    await store.addUserMessage(c.id, 'Second question');
    expect((await store.get(c.id)).title).toBe('What colour is the car? And the door?');
  });

  it('keeps regenerated answers as versions and switches between them', async () => {
    const c = await store.create();
    await store.addUserMessage(c.id, 'Describe it', ['a'.repeat(64)]);
    const first = await store.startAnswer(c.id, { method: 'none' });
    await store.finishAnswer(first, { status: 'done', text: 'A dog.' });
    const second = await store.startAnswer(c.id, { regenerate: first.messageId, method: 'transprune-high' });
    expect(second.messageId).toBe(first.messageId);
    await store.finishAnswer(second, { status: 'done', text: 'A brown dog.', traceId: 't1' });

    let message = await assistantAt(c.id, 1);
    expect(message.versions.map((v) => [v.text, v.method])).toEqual([
      ['A dog.', 'none'],
      ['A brown dog.', 'transprune-high'],
    ]);
    expect(message.current).toBe(1);
    expect(message.versions[1].traceId).toBe('t1');
    await store.selectVersion(c.id, first.messageId, 0);
    message = await assistantAt(c.id, 1);
    expect(message.current).toBe(0);
    await expect(store.selectVersion(c.id, first.messageId, 2)).rejects.toMatchObject({ problem: 'invalid' });
  });

  it('stores per-answer stats and refuses an answer without a question', async () => {
    const c = await store.create();
    await expect(store.startAnswer(c.id)).rejects.toMatchObject({ problem: 'invalid' });
    await store.addUserMessage(c.id, 'Q');
    const t = await store.startAnswer(c.id);
    const stats = {
      timeToFirstTokenMs: 812,
      prefillMs: 640,
      decodeTokensPerSec: 23.5,
      generatedTokens: 40,
      visualTokensKept: 72,
      visualTokensTotal: 576,
      tflops: 1.557,
      tflopsUnpruned: 3.817,
      executionProvider: 'cpu',
    };
    await store.finishAnswer(t, { status: 'done', text: 'A', stats });
    expect((await assistantAt(c.id, 1)).versions[0].stats).toEqual(stats);
  });

  it('a crash mid-answer keeps the partial text and recovery marks it interrupted', async () => {
    const c = await store.create();
    await store.addUserMessage(c.id, 'Count to five');
    const t = await store.startAnswer(c.id);
    await store.saveAnswerText(t, 'one two');
    await store.saveAnswerText(t, 'one two three');
    // "Crash": this store is dropped without finishing; a new one opens the same folder.
    const restarted = new ConversationStore(dir);
    expect(await restarted.recoverInterrupted()).toBe(1);
    const version = ((await restarted.get(c.id)).messages[1] as AssistantMessage).versions[0];
    expect(version).toMatchObject({ status: 'interrupted', text: 'one two three' });
    expect(await restarted.recoverInterrupted()).toBe(0);
  });

  it('serialises concurrent updates to one conversation so none is lost', async () => {
    const c = await store.create();
    await Promise.all(Array.from({ length: 12 }, (_, i) => store.addUserMessage(c.id, `q${i}`)));
    expect((await store.get(c.id)).messages.map((m) => (m.role === 'user' ? m.text : ''))).toEqual(
      Array.from({ length: 12 }, (_, i) => `q${i}`),
    );
  });

  it('leaves corrupt and foreign files alone, refuses unsafe ids', async () => {
    const good = await store.create('Good');
    await writeFile(join(dir, 'broken.json'), '{"schemaVersion": 1, "id": "broken", "tit');
    await writeFile(join(dir, '.x.json.abc.tmp'), 'half a write');
    expect((await store.list()).map((c) => c.id)).toEqual([good.id]);
    await expect(store.get('broken')).rejects.toMatchObject({ problem: 'corrupt' });
    expect(await readdir(dir)).toContain('broken.json');
    await expect(store.get('../etc/passwd')).rejects.toBeInstanceOf(StorageError);
  });

  it('says in words what is wrong with a damaged conversation and what to do', async () => {
    const c = await store.create('Cats');
    const onDisk = JSON.parse(await readFile(join(dir, `${c.id}.json`), 'utf8'));
    await writeFile(join(dir, `${c.id}.json`), JSON.stringify({ ...onDisk, messages: [{ role: 'robot' }], createdAt: 'yesterday' }));
    const error = (await store.get(c.id).then(
      () => new Error('read without error'),
      (e: Error) => e,
    )) as Error;
    expect(error.message).toMatch(new RegExp(`^Conversation ${c.id} cannot be read: createdAt: .*expected number.*; messages\\.0`));
    expect(error.message).toMatch(/is left as it was; restore it from a backup or delete it\.$/);
    expect(error.message).not.toMatch(/"code":|\[\s*\{/); // no raw zod issue dump
    await writeFile(join(dir, `${c.id}.json`), '{"schemaVersion": 1, "id"');
    await expect(store.get(c.id)).rejects.toThrow(/cannot be read: not valid JSON/);
  });

  it('refuses a file written by a newer app instead of damaging it', async () => {
    await writeFile(join(dir, 'future.json'), JSON.stringify({ schemaVersion: 99, id: 'future', title: 'x' }));
    await expect(store.get('future')).rejects.toMatchObject({ problem: 'corrupt' });
    expect(JSON.parse(await readFile(join(dir, 'future.json'), 'utf8')).schemaVersion).toBe(99);
  });
});

describe('migrations', () => {
  // A two-step table: v1 had `name` and plain-string messages, v2 renamed name -> title, v3 wrapped messages.
  const table: Record<number, Migration> = {
    1: ({ name, ...rest }) => ({ ...rest, title: name }),
    2: (doc) => ({ ...doc, messages: (doc.messages as string[]).map((text) => ({ text })) }),
  };

  it('runs every step from the stored version to the current one', () => {
    const v1 = { schemaVersion: 1, name: 'Old', messages: ['hi'] };
    expect(migrate(v1, table, 3)).toEqual({ schemaVersion: 3, title: 'Old', messages: [{ text: 'hi' }] });
    expect(migrate({ schemaVersion: 2, title: 'Mid', messages: ['a'] }, table, 3)).toEqual({
      schemaVersion: 3,
      title: 'Mid',
      messages: [{ text: 'a' }],
    });
  });

  it('passes a current document through and rejects gaps, newer versions and non-objects', () => {
    const current = { schemaVersion: 3, title: 'x' };
    expect(migrate(current, table, 3)).toEqual(current);
    expect(() => migrate({ schemaVersion: 1 }, {}, 2)).toThrow(UnsupportedSchemaError);
    expect(() => migrate({ schemaVersion: 4 }, table, 3)).toThrow(/newer/);
    expect(() => migrate([], table, 3)).toThrow(UnsupportedSchemaError);
    expect(() => migrate({ title: 'no version' }, table, 3)).toThrow(/schemaVersion/);
  });
});

describe('start-up cleanup', () => {
  it('removes temp files of writes cut short, in every folder the app writes, and nothing else', async () => {
    const userData = await mkdtemp(join(tmpdir(), 'tp-cleanup-'));
    const storage = openStorage(userData);
    const c = await storage.conversations.create('Kept');
    await storage.settings.save(DEFAULT_SETTINGS);
    const leftovers = [
      join(storage.conversations.dir, `.${c.id}.json.0a1b2c3d4e5f.tmp`),
      join(userData, '.settings.json.ffeeddccbbaa.tmp'),
    ];
    for (const path of leftovers) await writeFile(path, 'half a write');
    await writeFile(join(userData, 'notes.tmp'), 'not ours: no leading dot');
    expect(await storage.removeTempFiles()).toBe(2);
    expect(await readdir(storage.conversations.dir)).toEqual([`${c.id}.json`]);
    expect((await readdir(userData)).sort()).toEqual(['conversations', 'notes.tmp', 'settings.json']);
    expect((await storage.conversations.get(c.id)).title).toBe('Kept');
  });
});
