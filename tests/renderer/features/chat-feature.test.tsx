import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Client } from '../../../src/renderer/client/client.js';
import { ChatFeature, ConversationsFeature } from '../../../src/renderer/features/chat/ChatFeature.js';
import { ClientProvider } from '../../../src/renderer/shell/client-context.js';
import type { ViewProps } from '../../../src/renderer/shell/App.js';
import {
  appCalls,
  appEvents,
  parseRequest,
  type AppCallName,
  type AppEventName,
  type AppEventPayload,
  type AppRequest,
  type AppResponse,
} from '../../../src/shared/ipc.js';
import { errorFrom, ok, type Result } from '../../../src/shared/result.js';
import type { AskRequest, CompareRequest } from '../../../src/shared/ipc-features.js';
import type { Answerer, AnswerListener, CompareListener } from '../../../src/main/features/answerer.js';
import { createFeatures, type Features } from '../../../src/main/features/feature-handlers.js';
import { openStorage } from '../../../src/main/storage/index.js';
import { makeTrace } from './traceFixture.js';
import { singleViewLayout } from '../../../src/shared/trace.js';

/**
 * The chat feature against main's real feature handlers and storage, in process: requests and events
 * pass the contract's schemas as they would at the IPC boundary. Only the engine is replaced, by a
 * scripted answerer that streams words and honours stop, so the UI's streaming, stop, versions,
 * persistence and inspector can be driven here in seconds.
 */
class InProcessClient implements Client {
  constructor(private readonly features: Features) {}
  async call<K extends AppCallName>(name: K, request: AppRequest<K>): Promise<Result<AppResponse<K>>> {
    try {
      const call = parseRequest(appCalls, name, request);
      const handler = this.features.handlers[call.name as keyof Features['handlers']] as (r: unknown) => Promise<unknown>;
      if (!handler) throw new Error(`not a feature call: ${name}`);
      return ok(appCalls[name].response.parse(await handler(call.request))) as Result<AppResponse<K>>;
    } catch (e) {
      return errorFrom(e) as Result<AppResponse<K>>;
    }
  }
  on<E extends AppEventName>(event: E, listener: (payload: AppEventPayload<E>) => void): () => void {
    return this.features.onEvent((name: string, payload: unknown) => {
      if (name === event) act(() => listener((appEvents[event] as { parse(p: unknown): unknown }).parse(payload) as AppEventPayload<E>));
    });
  }
}

class ScriptedAnswerer implements Answerer {
  requests: AskRequest[] = [];
  /** The trace each answer carries (the engine's record of how it framed the image, among the rest). */
  trace = makeTrace();
  constructor(
    public words: string[],
    public delayMs = 10,
  ) {}
  async answer(request: AskRequest, { onText }: AnswerListener, signal: AbortSignal) {
    this.requests.push(request);
    let text = '';
    for (const [i, word] of this.words.entries()) {
      await new Promise((r) => setTimeout(r, this.delayMs));
      if (signal.aborted) throw new Error('cancelled');
      text += (i ? ' ' : '') + word;
      onText((i ? ' ' : '') + word);
    }
    return {
      text,
      stats: {
        timeToFirstTokenMs: 40,
        prefillMs: 25,
        decodeTokensPerSec: 80,
        generatedTokens: this.words.length,
        visualTokensKept: 6,
        visualTokensTotal: 16,
        tflops: 0.5,
        tflopsUnpruned: 1,
        executionProvider: 'cpu',
      },
      trace: this.trace,
    };
  }

  /** Scripted: the methods answer side by side, as the engine decodes them after their shared prefill. */
  async compare({ methods, ...request }: CompareRequest, { onText }: CompareListener, signal: AbortSignal) {
    return Promise.all(
      methods.map((method, branch) => this.answer({ ...request, method }, { onText: (delta) => onText(branch, delta) }, signal)),
    );
  }
}

const ready: ViewProps = {
  status: {
    state: 'ready',
    restarts: 0,
    info: { pid: 1, versions: { node: '20', onnxruntime: '1.30', protocol: 1 }, providers: [], activeProvider: 'cpu' },
  },
  models: [{ id: 'tiny', name: 'Tiny', path: '/models/tiny' }],
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tp-chat-ui-'));
});
afterEach(async () => {
  cleanup();
  await rm(dir, { recursive: true, force: true });
});

function featuresOver(answerer: Answerer) {
  const unused = () => Promise.reject(new Error('no model management in this test'));
  return createFeatures({
    storage: openStorage(dir),
    answerer,
    models: { plan: unused, import: unused, verify: unused, remove: unused, list: unused },
    chooseSavePath: async (name) => join(dir, name),
  });
}

async function mount(answerer: Answerer) {
  const features = featuresOver(answerer);
  const client = new InProcessClient(features);
  render(
    <ClientProvider client={client}>
      <ConversationsFeature />
      <ChatFeature {...ready} />
    </ClientProvider>,
  );
  const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#c33' } })
    .png()
    .toBuffer();
  return { client, features, file: new File([png], 'red.png', { type: 'image/png' }) };
}

async function ask(file: File, question: string) {
  fireEvent.drop(screen.getByTestId('composer'), { dataTransfer: { files: [file] } });
  await screen.findByRole('img', { name: 'Attached 40×30 PNG' });
  fireEvent.change(screen.getByLabelText('Question'), { target: { value: question } });
  fireEvent.click(screen.getByRole('button', { name: 'Send' }));
}

/** A view that fails to render. */
function Broken(): never {
  throw new Error('bad data');
}

describe('chat feature over the real feature handlers', () => {
  it('drops an image, asks, streams the answer with stats, and lists the conversation', async () => {
    const { file } = await mount(new ScriptedAnswerer(['A', 'red', 'rectangle.']));
    await ask(file, 'What is this?');
    await waitFor(() => expect(screen.getByTestId('answer-text').textContent).toBe('A red rectangle.'), { timeout: 3000 });
    // The whole text can stream in before the answer closes with its stats: wait for those.
    expect(within(await screen.findByLabelText('Answer statistics')).getByText('6 of 16')).toBeTruthy();
    expect(await screen.findByRole('button', { name: 'What is this?' })).toBeTruthy();
    expect(screen.getByRole('img', { name: 'Attached image' }).getAttribute('src')).toMatch(/^data:image\/webp;base64,/);
    fireEvent.click(screen.getByRole('button', { name: 'Export Markdown' }));
    const saved = await screen.findByText(/Saved to .*what-is-this\.md/);
    expect(readFileSync(saved.textContent!.replace('Saved to ', ''), 'utf8')).toContain('A red rectangle.');
  });

  it('stops mid-answer, keeps the partial text, then regenerates a second version', async () => {
    const answerer = new ScriptedAnswerer(
      Array.from({ length: 40 }, (_, i) => `w${i}`),
      15,
    );
    const { file } = await mount(answerer);
    await ask(file, 'Count');
    await waitFor(() => expect(screen.getByTestId('answer-text').textContent).toContain('w2'), { timeout: 3000 });
    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    await screen.findByText(/Stopped before the end/, undefined, { timeout: 3000 });
    const partial = screen.getByTestId('answer-text').textContent!;
    expect(partial).not.toContain('w39');

    answerer.words = ['Done.'];
    // The stopped answer offers to regenerate in its note, as well as among the answer's actions.
    const regenerate = screen.getAllByRole('button', { name: 'Regenerate' });
    expect(regenerate).toHaveLength(2);
    fireEvent.click(regenerate[0]);
    await waitFor(() => expect(screen.getByTestId('answer-text').closest('li')!.dataset.status).toBe('done'), { timeout: 3000 });
    expect(screen.getByTestId('answer-text').textContent).toBe('Done.');
    expect(screen.getByRole('group', { name: 'Answer versions' }).textContent).toContain('2 / 2');
    fireEvent.click(screen.getByRole('button', { name: 'Previous version' }));
    await waitFor(() => expect(screen.getByTestId('answer-text').textContent).toBe(partial));
  });

  it('opens the inspector on the answer and shows the trace', async () => {
    const { file } = await mount(new ScriptedAnswerer(['Red.']));
    await ask(file, 'Colour?');
    fireEvent.click(await screen.findByRole('button', { name: 'Inspect pruning' }, { timeout: 3000 }));
    const dialog = await screen.findByRole('dialog', { name: 'Pruning inspector' });
    await within(dialog).findByRole('slider');
    expect(within(dialog).getByTestId('inspector-kept').textContent).toBe('6');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Export trace JSON' }));
    expect((await within(dialog).findByText(/^Saved to .*\.json$/)).textContent).toContain(dir);
    fireEvent.click(within(dialog).getByRole('button', { name: 'Close inspector' }));
    expect(screen.queryByRole('dialog')).toBeNull();
  });

  it('shows a trace file over the image the model saw, found in the image store by its hash', async () => {
    const { client, file } = await mount(new ScriptedAnswerer(['x']));
    const stored = await client.call('images.add', { data: Buffer.from(await file.arrayBuffer()).toString('base64') });
    if (!stored.ok) throw new Error(stored.error.message);
    const trace = makeTrace();
    const withImage = { ...trace, image: { ...trace.image!, hash: stored.value.image.id } };
    fireEvent.change(screen.getByLabelText('Open trace file…'), {
      target: { files: [new File([JSON.stringify(withImage)], 'trace.json', { type: 'application/json' })] },
    });
    const dialog = await screen.findByRole('dialog', { name: 'Pruning inspector' });
    const image = await within(dialog).findByRole('img', { name: 'The image as the model sees it' });
    expect(image.getAttribute('src')).toBe(stored.value.thumbnail);
    expect(within(dialog).getByRole('region', { name: 'This answer' }).textContent).toContain('opened from a file');
  });

  it('opens a trace file in the inspector, and refuses one that breaks the schema', async () => {
    await mount(new ScriptedAnswerer(['x']));
    const input = screen.getByLabelText('Open trace file…');
    fireEvent.change(input, { target: { files: [new File([JSON.stringify(makeTrace())], 'trace.json', { type: 'application/json' })] } });
    const dialog = await screen.findByRole('dialog', { name: 'Pruning inspector' });
    expect(within(dialog).getByTestId('inspector-kept').textContent).toBe('6');
    expect((within(dialog).getByRole('button', { name: 'Export trace JSON' }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(within(dialog).getByRole('button', { name: 'Close inspector' }));
    const broken = { ...makeTrace(), layers: makeTrace().layers.slice(1) };
    fireEvent.change(input, { target: { files: [new File([JSON.stringify(broken)], 'bad.json')] } });
    expect((await screen.findByRole('alert')).textContent).toMatch(/bad\.json could not be opened: invalid trace/);
  });

  it('says in words what a wrong trace file is not, and lets the message go: dismissed, or left behind with its conversation', async () => {
    const { file } = await mount(new ScriptedAnswerer(['A', 'square.']));
    const wrong = () =>
      fireEvent.change(screen.getByLabelText('Open trace file…'), { target: { files: [new File(['{"hello": "world"}'], 'notes.json')] } });
    wrong();
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain(
      'notes.json could not be opened: not a trace file: a pruning trace is a JSON object with a "version" number, and this file has none.',
    );
    expect(alert.textContent).not.toMatch(/undefined/);
    fireEvent.click(within(alert).getByRole('button', { name: 'Dismiss' }));
    expect(screen.queryByRole('alert')).toBeNull();
    // Left behind with the conversation it was opened over.
    await ask(file, 'What is this?');
    await waitFor(() => expect(screen.getByTestId('answer-text').textContent).toBe('A square.'), { timeout: 3000 });
    wrong();
    await screen.findByRole('alert');
    fireEvent.click(screen.getByRole('button', { name: 'New chat' }));
    await waitFor(() => expect(screen.queryByRole('alert')).toBeNull());
  });

  it('"What the model sees" says how this model framed the image: padded around it, or cropped from it', async () => {
    for (const [rect, words] of [
      [{ x: 0, y: -80, width: 640, height: 640 }, /padded to a square with the mean colour/],
      [{ x: 80, y: 0, width: 480, height: 480 }, /resized so the short side fits, then centre-cropped/],
    ] as const) {
      const answerer = new ScriptedAnswerer(['A', 'square.']);
      answerer.trace = makeTrace({ layout: singleViewLayout(rect, { rows: 4, cols: 4 }) });
      const { file } = await mount(answerer);
      await ask(file, 'What is this?');
      await waitFor(() => expect(screen.getByTestId('answer-text').textContent).toBe('A square.'), { timeout: 3000 });
      fireEvent.click(await screen.findByText('What the model sees'));
      await waitFor(() => expect(screen.getByRole('note').textContent).toMatch(words));
      cleanup();
    }
  });

  it('a view that throws shows the problem inline with a retry, not a blank window', async () => {
    const { ErrorBoundary } = await import('../../../src/renderer/features/common/ErrorBoundary.js');
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    render(
      <ErrorBoundary label="chat">
        <Broken />
      </ErrorBoundary>,
    );
    spy.mockRestore();
    expect(screen.getByRole('alert').textContent).toContain('The chat view hit a problem: bad data');
    expect(screen.getByRole('button', { name: 'Try again' })).toBeTruthy();
  });

  it('shows a rejected image inline', async () => {
    await mount(new ScriptedAnswerer(['x']));
    fireEvent.drop(screen.getByTestId('composer'), {
      dataTransfer: { files: [new File(['%PDF-1.4'], 'doc.pdf', { type: 'application/pdf' })] },
    });
    expect((await screen.findByRole('alert')).textContent).toMatch(/not an image/);
  });
});

describe('settings feature over the real handlers', () => {
  it('remembers changes across a restart of the UI and the store', async () => {
    const { SettingsFeature } = await import('../../../src/renderer/features/settings/SettingsFeature.js');
    const show = () =>
      render(
        <ClientProvider client={new InProcessClient(featuresOver(new ScriptedAnswerer([])))}>
          <SettingsFeature {...ready} />
        </ClientProvider>,
      );
    show();
    fireEvent.change(await screen.findByLabelText('Pruning method'), { target: { value: 'transprune-low' } });
    fireEvent.change(screen.getByLabelText('Schedule'), { target: { value: '2-4/2,4/0.5,0.25' } });
    fireEvent.change(screen.getByLabelText('Max new tokens'), { target: { value: '64' } });
    await waitFor(() => expect(JSON.parse(readFileSync(join(dir, 'settings.json'), 'utf8')).sampling.maxTokens).toBe(64));
    cleanup();
    show(); // a new client and a new store over the same folder: a relaunch
    expect(((await screen.findByLabelText('Pruning method')) as HTMLSelectElement).value).toBe('transprune-low');
    expect((screen.getByLabelText('Schedule') as HTMLInputElement).value).toBe('2-4/2,4/0.5,0.25');
    expect((screen.getByLabelText('Max new tokens') as HTMLInputElement).value).toBe('64');
  });
});
