import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AnswerStats, AssistantMessage } from '../../src/shared/conversation.js';
import type { ChatAnswerEvent, CompareAnswerEvent } from '../../src/shared/ipc-features.js';
import { CodedError } from '../../src/shared/result.js';
import { Trace } from '../../src/shared/trace.js';
import type { AskRequest, CompareRequest } from '../../src/shared/ipc-features.js';
import type { Answerer, AnswerListener, CompareListener } from '../../src/main/features/answerer.js';
import { promptFor } from '../../src/main/features/chat.js';
import { createFeatures, type Features } from '../../src/main/features/feature-handlers.js';
import type { ModelInstaller } from '../../src/main/features/models.js';
import { openStorage, type Storage } from '../../src/main/storage/index.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { planImport } from '../../src/engine/pack/footprint.js';
import { findPack, listPacks, removePack } from '../../src/engine/pack/store.js';
import { verifyPack } from '../../src/engine/pack/verify.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { makeTrace } from '../renderer/features/traceFixture.js';
import { startStandInHub } from '../helpers/stand-in-hub.js';

const readFileSyncText = (path: string) => readFileSync(path, 'utf8');

const stats: AnswerStats = {
  timeToFirstTokenMs: 50,
  prefillMs: 30,
  decodeTokensPerSec: 100,
  generatedTokens: 4,
  visualTokensKept: 6,
  visualTokensTotal: 16,
  tflops: 0.001,
  tflopsUnpruned: 0.003,
  executionProvider: 'cpu',
};

/**
 * A scripted stand-in for the engine behind the Answerer port: it streams the given words one per
 * tick, honours abort between "decode steps" as the engine does, and records what it was asked.
 */
class ScriptedAnswerer implements Answerer {
  requests: AskRequest[] = [];
  constructor(
    private readonly words: string[],
    private readonly failAt?: number,
    private readonly failure: Error = new Error('engine crashed (oom)'),
  ) {}
  async answer(request: AskRequest, { onText, onProgress }: AnswerListener, signal: AbortSignal, words = this.words) {
    this.requests.push(request);
    onProgress?.({ done: 0, total: 0, message: 'Loading the model' });
    let text = '';
    for (const [i, word] of words.entries()) {
      await new Promise((r) => setTimeout(r, 15));
      if (signal.aborted) throw new Error('cancelled');
      if (i === this.failAt) throw this.failure;
      const delta = (i ? ' ' : '') + word;
      text += delta;
      onText(delta);
    }
    return { text, stats, trace: makeTrace() };
  }

  /** Scripted: the methods answer side by side, as the engine decodes them after their shared prefill; branch i stops after `lengths[i]` words. */
  lengths?: number[];
  async compare({ methods, ...request }: CompareRequest, { onText, onProgress, onAnswer }: CompareListener, signal: AbortSignal) {
    return Promise.all(
      methods.map(async (method, branch) => {
        const words = this.words.slice(0, this.lengths?.[branch]);
        const result = await this.answer({ ...request, method }, { onText: (delta) => onText(branch, delta), onProgress }, signal, words);
        onAnswer?.(branch, result);
        return result;
      }),
    );
  }
}

/** Model management done in process with the engine's own pack functions (the worker runs the same ones). */
function storeInstaller(store: string): ModelInstaller {
  return {
    plan: (path) => planImport(path),
    async import(path, dtype, onProgress, signal) {
      const pack = await importCheckpoint(path, store, {
        dtype,
        signal,
        onProgress,
      });
      const { id, name } = (await listPacks(store)).find((p) => p.path === pack.dir)!;
      return { id, name, path: pack.dir };
    },
    verify: async (id, onProgress) => verifyPack((await findPack(store, id)).path, { onProgress }),
    remove: async (id) => void (await removePack(store, id)),
    list: async () => (await listPacks(store)).map(({ id, name, path }) => ({ id, name, path })),
  };
}

let dir: string;
let storage: Storage;
let image: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tp-features-'));
  storage = openStorage(dir);
  const png = await sharp({ create: { width: 32, height: 24, channels: 3, background: '#3a6' } })
    .png()
    .toBuffer();
  image = (await storage.images.addBytes(png)).id;
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function setup(answerer: Answerer, hfEndpoint?: string) {
  const events: (ChatAnswerEvent | CompareAnswerEvent)[] = [];
  const saved: string[] = [];
  const features: Features = createFeatures({
    storage,
    answerer,
    models: storeInstaller(join(dir, 'models')),
    chooseSavePath: async (name) => {
      saved.push(name);
      return join(dir, name);
    },
    hfEndpoint,
  });
  features.onEvent(
    (event, payload) =>
      (event === 'chat.answer' || event === 'compare.answer') && events.push(payload as ChatAnswerEvent | CompareAnswerEvent),
  );
  const until = async (done: () => boolean) => {
    for (let i = 0; i < 400 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  return { features, events, saved, until, h: features.handlers };
}

describe('per-conversation settings', () => {
  it('a new conversation takes the global settings; its own model, method, system prompt, max tokens and temperature then answer', async () => {
    const answerer = new ScriptedAnswerer(['Fine.']);
    const { h, events, until } = setup(answerer);
    const global = await storage.settings.load();
    await storage.settings.save({ ...global, method: 'fastv', sampling: { ...global.sampling, maxTokens: 32, temperature: 0.3 } });
    const c = await h['conversations.create']({});
    expect(c.settings).toEqual({ method: 'fastv', systemPrompt: '', maxTokens: 32, temperature: 0.3 });
    // The global settings change afterwards: this conversation keeps its own.
    await storage.settings.save({ ...(await storage.settings.load()), method: 'none' });
    const own = { method: 'pdrop', systemPrompt: 'Answer in one word.', maxTokens: 7, temperature: 0.9 };
    expect((await h['conversations.setSettings']({ id: c.id, settings: own })).settings).toEqual(own);
    await h['chat.send']({ conversationId: c.id, text: 'How are you?', images: [] });
    await until(() => events.at(-1)?.status === 'done');
    const request = answerer.requests[0];
    expect(request.turns).toEqual([
      { role: 'system', text: 'Answer in one word.' },
      { role: 'user', text: 'How are you?' },
    ]);
    expect(request.method.llm.kind).toBe('pdrop');
    expect(request.maxTokens).toBe(7);
    expect(request.sampling?.temperature).toBe(0.9);
    const answer = (await h['conversations.get']({ id: c.id })).messages[1] as AssistantMessage;
    expect(answer.versions[0].method).toBe('pdrop'); // every answer records the method that produced it
    // Another new conversation starts from the global settings of now.
    expect((await h['conversations.create']({})).settings?.method).toBe('none');
    // A model that is not installed is refused, as in the global settings.
    await expect(h['conversations.setSettings']({ id: c.id, settings: { ...own, modelId: 'no-such-model' } })).rejects.toThrow(
      /No installed model/,
    );
  });
});

describe('chat service', () => {
  it('streams an answer, saves it with stats and a trace, and exports the trace', async () => {
    const answerer = new ScriptedAnswerer(['A', 'green', 'square.']);
    const { h, events, until } = setup(answerer);
    const c = await h['conversations.create']({});
    const target = await h['chat.send']({ conversationId: c.id, text: 'What is it?', images: [image] });
    await until(() => events.at(-1)?.status === 'done');
    const last = events.at(-1) as ChatAnswerEvent;
    expect(last).toMatchObject({ ...target, text: 'A green square.', status: 'done', stats });
    expect(events.slice(0, -1).every((e) => e.status === 'streaming')).toBe(true);

    const stored = (await h['conversations.get']({ id: c.id })).messages[1] as AssistantMessage;
    expect(stored.versions[0]).toMatchObject({
      text: 'A green square.',
      status: 'done',
      stats,
      traceId: last.traceId,
      method: 'transprune-high',
    });
    expect(answerer.requests[0].turns).toEqual([{ role: 'user', text: 'What is it?', image: true }]);
    expect(answerer.requests[0].method.llm.kind).toBe('transprune');
    expect(answerer.requests[0].image).toBe(await storage.images.path(image));

    const exported = await h['export.trace']({ traceId: last.traceId!, format: 'json' });
    expect(() => Trace.parse(JSON.parse(readFileSyncText(exported.path!)))).not.toThrow();
  });

  it('stop keeps the partial answer as interrupted; regenerate adds a version', async () => {
    const { h, events, until } = setup(new ScriptedAnswerer(['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight']));
    const c = await h['conversations.create']({});
    const target = await h['chat.send']({ conversationId: c.id, text: 'Count', images: [image] });
    await until(() => events.some((e) => e.text.includes('two')));
    await expect(h['chat.send']({ conversationId: c.id, text: 'again', images: [] })).rejects.toThrow(/still answering/);
    expect(await h['chat.stop']({ conversationId: c.id })).toEqual({ stopped: true });
    await until(() => events.at(-1)?.status === 'interrupted');
    const partial = events.at(-1)!.text;
    expect(partial.startsWith('one two')).toBe(true);
    expect(partial).not.toContain('eight');
    let message = (await h['conversations.get']({ id: c.id })).messages[1] as AssistantMessage;
    expect(message.versions[0]).toMatchObject({ status: 'interrupted', text: partial });

    await h['chat.regenerate']({ conversationId: c.id, messageId: target.messageId });
    await until(() => events.at(-1)?.status === 'done');
    message = (await h['conversations.get']({ id: c.id })).messages[1] as AssistantMessage;
    expect(message.versions.map((v) => v.status)).toEqual(['interrupted', 'done']);
    expect(message.current).toBe(1);
  });

  it('an engine failure is saved as an error with the text so far', async () => {
    const { h, events, until } = setup(new ScriptedAnswerer(['Half', 'an', 'answer'], 2));
    const c = await h['conversations.create']({});
    await h['chat.send']({ conversationId: c.id, text: 'Q', images: [image] });
    await until(() => events.at(-1)?.status === 'error');
    expect(events.at(-1)).toMatchObject({ status: 'error', text: 'Half an', error: 'engine crashed (oom)' });
  });

  it('an engine crash mid-answer keeps the text so far and marks the answer interrupted', async () => {
    const crash = new CodedError('engine-crashed', 'the engine crashed: killed by SIGKILL');
    const { h, events, until } = setup(new ScriptedAnswerer(['Kept', 'so', 'far', 'lost'], 3, crash));
    const c = await h['conversations.create']({});
    await h['chat.send']({ conversationId: c.id, text: 'Q', images: [image] });
    await until(() => events.at(-1)?.status === 'interrupted');
    const stored = ((await h['conversations.get']({ id: c.id })).messages[1] as AssistantMessage).versions[0];
    // In the user's words, with what happened and that nothing is lost; the signal stays in the engine status.
    expect(stored).toMatchObject({ status: 'interrupted', text: 'Kept so far' });
    expect(stored.error).toBe('The engine stopped unexpectedly and was restarted. Your text is kept.');
  });

  it('refuses images the store never accepted and a second image in one question', async () => {
    const { h } = setup(new ScriptedAnswerer(['x']));
    const c = await h['conversations.create']({});
    await expect(h['chat.send']({ conversationId: c.id, text: 'Q', images: ['0'.repeat(64)] })).rejects.toMatchObject({
      code: 'not-found',
    });
    const other = (
      await storage.images.addBytes(
        await sharp({ create: { width: 8, height: 8, channels: 3, background: '#111' } })
          .png()
          .toBuffer(),
      )
    ).id;
    await expect(h['chat.send']({ conversationId: c.id, text: 'Q', images: [image, other] })).rejects.toThrow(/one image per question/);
    expect((await h['conversations.get']({ id: c.id })).messages).toEqual([]);
  });

  it('answers a text-only question, opening the conversation only once the question is accepted', async () => {
    const answerer = new ScriptedAnswerer(['Hello']);
    const { h, events, until } = setup(answerer);
    await expect(h['chat.send']({ text: ' ', images: [] })).rejects.toThrow(/Type a question/);
    expect(await h['conversations.list']({})).toEqual([]); // a refused question leaves no conversation behind
    const target = await h['chat.send']({ text: 'Say hello', images: [] });
    await until(() => events.at(-1)?.status === 'done');
    expect(answerer.requests[0]).toMatchObject({ turns: [{ role: 'user', text: 'Say hello' }] });
    expect(answerer.requests[0].image).toBeUndefined();
    expect((await h['conversations.list']({})).map((c) => [c.id, c.title])).toEqual([[target.conversationId, 'Say hello']]);
    // Progress reaches the renderer while it streams.
    expect(events.some((e) => e.status === 'streaming' && e.progress?.message === 'Loading the model')).toBe(true);
  });
});

describe('prompt turns', () => {
  it('puts the image on the latest user turn with one and uses the shown version of earlier answers', async () => {
    const c = await storage.conversations.create();
    await storage.conversations.addUserMessage(c.id, 'first', [image]);
    const t1 = await storage.conversations.startAnswer(c.id);
    await storage.conversations.finishAnswer(t1, { status: 'done', text: 'old answer' });
    const t2 = await storage.conversations.startAnswer(c.id, { regenerate: t1.messageId });
    await storage.conversations.finishAnswer(t2, { status: 'done', text: 'new answer' });
    await storage.conversations.addUserMessage(c.id, 'second');
    const conversation = await storage.conversations.get(c.id);
    expect(promptFor(conversation)).toEqual({
      imageId: image,
      turns: [
        { role: 'user', text: 'first', image: true },
        { role: 'assistant', text: 'new answer' },
        { role: 'user', text: 'second' },
      ],
    });
    expect(promptFor(conversation, t1.messageId).turns).toEqual([{ role: 'user', text: 'first', image: true }]);
  });
});

describe('compare service', () => {
  it('answers one question with both methods, streaming each side', async () => {
    const answerer = new ScriptedAnswerer(['Same', 'words']);
    const { h, events, until } = setup(answerer);
    const { runId } = await h['compare.run']({ text: 'Q', image, left: 'none', right: 'transprune-high' });
    await until(() => events.filter((e) => e.status === 'done').length === 2);
    // Both sides decode at once, so either may finish first.
    const done = (events.filter((e) => e.status === 'done') as CompareAnswerEvent[]).sort((a, b) => a.side.localeCompare(b.side));
    expect(done.map((e) => [e.runId, e.side, e.text])).toEqual([
      [runId, 'left', 'Same words'],
      [runId, 'right', 'Same words'],
    ]);
    expect(answerer.requests.map((r) => r.method.llm.kind)).toEqual(['none', 'transprune']);
    expect(await storage.traces.get(done[1].traceId!)).toMatchObject({ method: { label: 'transprune-high' } });
  });

  it('keeps the comparison in the conversation it was asked in: both answers, methods, stats and traces, after a restart too', async () => {
    const { h, events, until, saved } = setup(new ScriptedAnswerer(['Red', 'square.']));
    const c = await h['conversations.create']({});
    const started = await h['compare.run']({ text: 'What colour?', image, left: 'none', right: 'fastv', conversationId: c.id });
    expect(started.conversationId).toBe(c.id);
    await until(() => events.filter((e) => e.status === 'done').length === 2);
    // A restart: the storage opened again from the same folder.
    const reopened = await openStorage(dir).conversations.get(c.id);
    const comparison = reopened.messages.find((m) => m.id === started.messageId);
    expect(comparison?.role).toBe('comparison');
    if (comparison?.role !== 'comparison') return;
    expect([comparison.text, comparison.images]).toEqual(['What colour?', [image]]);
    for (const [side, method] of [
      ['left', 'none'],
      ['right', 'fastv'],
    ] as const) {
      expect(comparison[side]).toMatchObject({ method, text: 'Red square.', status: 'done', stats });
      await expect(storage.traces.get(comparison[side].traceId!)).resolves.toBeDefined(); // each side's trace, stored
    }
    expect(reopened.title).toBe('What colour?');
    // A chat answer afterwards does not read the comparison as a turn.
    const answerer = new ScriptedAnswerer(['Yes.']);
    const chat = setup(answerer);
    await chat.h['chat.send']({ conversationId: c.id, text: 'Sure?', images: [] });
    await chat.until(() => chat.events.at(-1)?.status === 'done');
    expect(answerer.requests[0].turns).toEqual([{ role: 'user', text: 'Sure?' }]);
    // Exported with the conversation, side by side.
    const md = readFileSyncText((await h['export.conversation']({ id: c.id, format: 'markdown' })).path!);
    expect(md).toContain('**You, comparing two methods:**');
    expect(md).toContain('**Left** (none):\n\nRed square.');
    expect(md).toContain('**Right** (fastv):\n\nRed square.');
    expect(saved).toEqual(['what-colour.md']);
    // Without an open conversation, a new one holds it.
    const fresh = await h['compare.run']({ text: 'Shape?', image, left: 'none', right: 'fastv' });
    expect(fresh.conversationId).not.toBe(c.id);
  });

  it('compares two models: each side asks its own model, in turn, and the comparison keeps which model answered', async () => {
    /** Answers with a trace that names the model it was asked for, as the engine's does. */
    class PerModelAnswerer extends ScriptedAnswerer {
      override async answer(request: AskRequest, listener: AnswerListener, signal: AbortSignal) {
        const result = await super.answer(request, listener, signal, [`from-${request.model}`]);
        return { ...result, trace: { ...result.trace, model: { ...result.trace.model, id: request.model! } } };
      }
    }
    const answerer = new PerModelAnswerer([]);
    const { h, events, until } = setup(answerer);
    const c = await h['conversations.create']({});
    const started = await h['compare.run']({
      text: 'Q',
      image,
      left: 'none',
      right: 'transprune-high',
      models: { left: 'model-a', right: 'model-b' },
      conversationId: c.id,
    });
    await until(() => events.filter((e) => e.status === 'done').length === 2);
    expect(answerer.requests.map((r) => [r.model, r.method.llm.kind])).toEqual([
      ['model-a', 'none'],
      ['model-b', 'transprune'],
    ]);
    // The right model's loading progress goes to its own pane: the left, done first, stays done.
    const leftEvents = (events as CompareAnswerEvent[]).filter((e) => e.side === 'left');
    expect(leftEvents.at(-1)?.status).toBe('done');
    expect(leftEvents.filter((e) => e.status === 'done')).toHaveLength(1);
    const comparison = (await storage.conversations.get(c.id)).messages.find((m) => m.id === started.messageId);
    if (comparison?.role !== 'comparison') throw new Error('no comparison kept');
    expect([comparison.left, comparison.right].map((a) => [a.modelId, a.text])).toEqual([
      ['model-a', 'from-model-a'],
      ['model-b', 'from-model-b'],
    ]);
    const md = readFileSyncText((await h['export.conversation']({ id: c.id, format: 'markdown' })).path!);
    expect(md).toContain('**You, comparing two models:**');
    expect(md).toContain('**Right** (transprune-high, model model-b):\n\nfrom-model-b');
  });

  it('streams both sides at once; the shorter answer is done while the other still streams', async () => {
    const words = Array.from({ length: 40 }, (_, i) => `w${i}`);
    const answerer = new ScriptedAnswerer(words);
    answerer.lengths = [2, 40];
    const { h, events, until } = setup(answerer);
    await h['compare.run']({ text: 'Q', image, left: 'none', right: 'transprune-high' });
    await until(() => events.filter((e) => e.status === 'done').length === 2);
    const compareEvents = events as CompareAnswerEvent[];
    const leftDone = compareEvents.findIndex((e) => e.side === 'left' && e.status === 'done');
    expect(compareEvents[leftDone]).toMatchObject({ text: 'w0 w1', stats });
    expect(compareEvents.slice(leftDone + 1).some((e) => e.side === 'right' && e.status === 'streaming')).toBe(true);
    expect(compareEvents.find((e) => e.side === 'right' && e.status === 'done')?.text).toBe(words.join(' '));
  });

  it('a stop keeps both partial answers, each marked interrupted', async () => {
    const { h, events, until } = setup(new ScriptedAnswerer(['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight']));
    const { runId } = await h['compare.run']({ text: 'Q', image, left: 'none', right: 'transprune-high' });
    await until(() =>
      (['left', 'right'] as const).every((side) => (events as CompareAnswerEvent[]).some((e) => e.side === side && e.text.includes('two'))),
    );
    expect(await h['compare.stop']({ runId })).toEqual({ stopped: true });
    await until(() => events.filter((e) => e.status === 'interrupted').length === 2);
    for (const side of ['left', 'right']) {
      const last = (events as CompareAnswerEvent[]).findLast((e) => e.side === side)!;
      expect(last.status).toBe('interrupted');
      expect(last.text.startsWith('one two')).toBe(true);
      expect(last.text).not.toContain('eight');
    }
  });
});

describe('exports', () => {
  it('writes the conversation as Markdown and JSON where the user chose', async () => {
    const { h, saved, events, until } = setup(new ScriptedAnswerer(['Green.']));
    const c = await h['conversations.create']({});
    await h['chat.send']({ conversationId: c.id, text: 'Colour?', images: [image] });
    await until(() => events.at(-1)?.status === 'done');
    const md = await h['export.conversation']({ id: c.id, format: 'markdown' });
    const text = readFileSyncText(md.path!);
    expect(text).toContain('# Colour?');
    expect(text).toContain('**Assistant** (transprune-high):');
    expect(text).toContain('visual tokens 6/16');
    expect(text).toContain('compute 1 GFLOPs (33.3%)'); // 0.001 of 0.003 TFLOPs, printed as the app and the CLI print it
    const json = await h['export.conversation']({ id: c.id, format: 'json' });
    expect(JSON.parse(readFileSyncText(json.path!)).conversation.id).toBe(c.id); // inside the export envelope, with its images and traces
    expect(saved).toEqual(['colour.md', 'colour.json']);
  });
});

describe('edit and branch', () => {
  it('asks an edited question in a branch that keeps the turns before it; the old branch stays as it was', async () => {
    const answerer = new ScriptedAnswerer(['Fine.']);
    const { h, events, until } = setup(answerer);
    const c = await h['conversations.create']({});
    await h['chat.send']({ conversationId: c.id, text: 'What is it?', images: [image] });
    await until(() => events.filter((e) => e.status === 'done').length === 1);
    await h['chat.send']({ conversationId: c.id, text: 'What colour?', images: [] });
    await until(() => events.filter((e) => e.status === 'done').length === 2);
    const before = await h['conversations.get']({ id: c.id });
    const question = before.messages[2];

    const target = await h['chat.edit']({ conversationId: c.id, messageId: question.id, text: 'What shape?' });
    await until(() => events.filter((e) => e.status === 'done').length === 3);
    expect(target.conversationId).not.toBe(c.id);
    const branch = await h['conversations.get']({ id: target.conversationId });
    expect(branch.branchedFrom).toEqual({ conversationId: c.id, messageId: question.id });
    expect(branch.messages.map((m) => (m.role === 'user' ? m.text : 'answer'))).toEqual(['What is it?', 'answer', 'What shape?', 'answer']);
    expect(branch.title).toBe('What is it? (branch)');
    // The model read the turns before the edit and the edited question, with the image of the first turn.
    expect(answerer.requests.at(-1)?.turns?.map((t) => t.text)).toEqual(['What is it?', 'Fine.', 'What shape?']);
    expect(await h['conversations.get']({ id: c.id })).toEqual(before);
    // Editing the first question keeps its image.
    const first = await h['chat.edit']({ conversationId: c.id, messageId: before.messages[0].id, text: 'And this?' });
    const fromFirst = await h['conversations.get']({ id: first.conversationId });
    expect(fromFirst.messages[0]).toMatchObject({ role: 'user', text: 'And this?', images: [image] });
    expect(fromFirst.title).toBe('And this?');
  });
});

describe('conversation files', () => {
  it('Export JSON carries the images and traces; Import on another computer opens it whole; Markdown carries the images', async () => {
    const { h, events, until } = setup(new ScriptedAnswerer(['A', 'green', 'square.']));
    const c = await h['conversations.create']({});
    await h['chat.send']({ conversationId: c.id, text: 'What is it?', images: [image] });
    await until(() => events.at(-1)?.status === 'done');
    const original = await h['conversations.get']({ id: c.id });
    const json = readFileSyncText((await h['export.conversation']({ id: c.id, format: 'json' })).path!);
    const md = readFileSyncText((await h['export.conversation']({ id: c.id, format: 'markdown' })).path!);
    expect(md).toContain(`![image](data:image/png;base64,${readFileSync(await storage.images.path(image)).toString('base64')})`);

    // Another computer: empty user data.
    storage = openStorage(await mkdtemp(join(tmpdir(), 'tp-other-')));
    const other = setup(new ScriptedAnswerer(['x']));
    const imported = await other.h['conversations.import']({ text: json });
    expect(imported.id).not.toBe(original.id);
    expect(imported.messages.map((m) => (m.role === 'user' ? m.text : m.role === 'assistant' ? m.versions[0].text : ''))).toEqual([
      'What is it?',
      'A green square.',
    ]);
    expect(await storage.images.path(image)).toBeTruthy(); // the image came with it, under the same id
    const answer = imported.messages[1] as AssistantMessage;
    expect((await other.h['traces.get']({ traceId: answer.versions[0].traceId! })).totals.answer).toBeDefined();
    expect((await other.h['conversations.list']({})).map((s) => s.title)).toEqual(['What is it?']);

    // Not an export, or one whose image was edited: refused in words, nothing added.
    await expect(other.h['conversations.import']({ text: '{"hello": 1}' })).rejects.toThrow(
      /not a conversation exported by TransPrune Studio/,
    );
    const edited = JSON.parse(json);
    edited.images[image] = Buffer.from('not the picture').toString('base64');
    await expect(other.h['conversations.import']({ text: JSON.stringify(edited) })).rejects.toThrow(/damaged/);
    expect(await other.h['conversations.list']({})).toHaveLength(1);
  });
});

describe('model management', () => {
  it('imports a checkpoint folder with progress, refuses a second import meanwhile, and removes it', async () => {
    const checkpoint = await makeSyntheticCheckpoint(join(dir, 'hf'), { preset: 'tiny' });
    const { h, features } = setup(new ScriptedAnswerer(['x']));
    const progress: number[] = [];
    const changes: unknown[] = [];
    features.onEvent((event, payload) => {
      if (event === 'models.progress') progress.push((payload as { done: number }).done);
      if (event === 'models.changed') changes.push(payload);
    });
    const plan = await h['models.plan']({ path: checkpoint.dir });
    expect(existsSync(join(dir, 'models'))).toBe(false); // nothing written before the user chooses
    expect(plan.footprints.find((f) => f.dtype === plan.recommended)).toBeDefined();
    const importing = h['models.import']({ path: checkpoint.dir, dtype: 'int4' });
    await expect(h['models.import']({ path: checkpoint.dir })).rejects.toThrow(/already being added/);
    const model = await importing;
    expect((await listPacks(join(dir, 'models')))[0].manifest.dtype).toBe('int4'); // the precision chosen reaches the importer
    expect(progress.length).toBeGreaterThan(2);
    expect(changes.at(-1)).toEqual([model]);
    expect(progress.at(-1)).toBe(1);
    expect((await listPacks(join(dir, 'models'))).map((p) => p.id)).toEqual([model.id]);

    await storage.settings.save({ ...(await storage.settings.load()), modelId: model.id });
    await h['models.remove']({ id: model.id });
    expect(await listPacks(join(dir, 'models'))).toEqual([]);
    expect((await h['settings.get']({})).modelId).toBeUndefined();
    expect(changes.at(-1)).toEqual([]);
  });

  it('cancel stops an import and reports a missing folder clearly', async () => {
    const checkpoint = await makeSyntheticCheckpoint(join(dir, 'hf'), { preset: 'tiny' });
    const { h, features } = setup(new ScriptedAnswerer(['x']));
    features.onEvent((event) => event === 'models.progress' && void h['models.cancelImport']({}));
    await expect(h['models.import']({ path: checkpoint.dir })).rejects.toThrow();
    expect(await listPacks(join(dir, 'models'))).toEqual([]);
    expect(await h['models.cancelImport']({})).toEqual({ cancelled: false });
    await expect(h['models.import']({ path: join(dir, 'nowhere') })).rejects.toThrow(/nowhere/);
  });
});

/** The stand-in hub serving a checkpoint folder as one repo. */
function hubServing(repoId: string, folder: string) {
  const files = readdirSync(folder, { withFileTypes: true }).filter((f) => f.isFile());
  return startStandInHub({ [repoId]: Object.fromEntries(files.map((f) => [f.name, readFileSync(join(folder, f.name))])) });
}

describe('download by repo id', () => {
  it('downloads the checkpoint files with progress, then imports them', async () => {
    const checkpoint = await makeSyntheticCheckpoint(join(dir, 'hf'), { preset: 'tiny' });
    const hub = await hubServing('org/tiny', checkpoint.dir);
    try {
      const { h, features } = setup(new ScriptedAnswerer(['x']), hub.url);
      const messages: string[] = [];
      features.onEvent((event, payload) => event === 'models.progress' && messages.push((payload as { message: string }).message));
      const model = await h['models.download']({ repoId: 'org/tiny' });
      expect((await listPacks(join(dir, 'models'))).map((p) => p.id)).toEqual([model.id]);
      expect(messages.some((m) => m.startsWith('Downloading config.json'))).toBe(true);
      expect(readdirSync(join(storage.downloadsDir, 'org--tiny')).sort()).toEqual(
        readdirSync(checkpoint.dir)
          .filter((f) => f !== 'README.md')
          .sort(),
      );
      await expect(h['models.download']({ repoId: 'org/missing' })).rejects.toThrow('No model "org/missing" on Hugging Face.');
    } finally {
      await hub.close();
    }
  });

  it('says offline when the hub cannot be reached', async () => {
    const closed = await hubServing('org/tiny', dir);
    await closed.close(); // nothing listens there any more
    const { h } = setup(new ScriptedAnswerer(['x']), closed.url);
    await expect(h['models.download']({ repoId: 'org/tiny' })).rejects.toThrow(/Cannot reach 127\.0\.0\.1:\d+: you seem to be offline/);
  });
});
