import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '../../src/renderer/client/client.js';
import { ElectronClient } from '../../src/renderer/client/electron-client.js';
import { featureSlots } from '../../src/renderer/features/index.js';
import { App } from '../../src/renderer/shell/App.js';
import { ClientProvider } from '../../src/renderer/shell/client-context.js';
import type {
  AppCallName,
  AppEventName,
  AppEventPayload,
  AppRequest,
  AppResponse,
  EngineInfo,
  EngineStatus,
  ModelSummary,
  WindowApi,
} from '../../src/shared/ipc.js';
import { err, ok, type Result } from '../../src/shared/result.js';
import { DEFAULT_SETTINGS } from '../../src/shared/settings.js';

/**
 * The shell with the real features against a small in-memory Client: it holds an engine status and
 * a model list, pushes status events like the real hosts do, and has no conversations and the default
 * settings. Used only to render components; the real clients are tested against the real hosts
 * (tests/main/web-host.test.ts, tests/e2e).
 */
class MemoryClient implements Client {
  calls: { name: string; request: unknown }[] = [];
  private listeners = new Set<(s: EngineStatus) => void>();
  constructor(
    public status: EngineStatus,
    public models: ModelSummary[] = [],
  ) {}

  async call<K extends AppCallName>(name: K, request: AppRequest<K>): Promise<Result<AppResponse<K>>> {
    this.calls.push({ name, request });
    const up = this.status.state === 'ready' || this.status.state === 'busy';
    switch (name) {
      case 'engine.status':
        return ok(this.status) as Result<AppResponse<K>>;
      case 'models.list':
        return (up ? ok(this.models) : err('engine-unavailable', `the engine is ${this.status.state}`)) as Result<AppResponse<K>>;
      case 'conversations.list':
      case 'models.catalogue':
        return ok([]) as Result<AppResponse<K>>;
      case 'settings.get':
        return ok(DEFAULT_SETTINGS) as Result<AppResponse<K>>;
      case 'engine.restart':
        this.push({ ...this.status, state: 'ready', restarts: this.status.restarts + 1 });
        return ok(this.status) as Result<AppResponse<K>>;
      default:
        return ok({ provider: 'cpu', runs: 200, meanMs: 0.0125 }) as Result<AppResponse<K>>;
    }
  }

  on<E extends AppEventName>(event: E, listener: (payload: AppEventPayload<E>) => void): () => void {
    if (event !== 'engine.status') return () => {};
    const statusListener = listener as (s: EngineStatus) => void;
    this.listeners.add(statusListener);
    return () => void this.listeners.delete(statusListener);
  }

  push(status: EngineStatus): void {
    this.status = status;
    act(() => this.listeners.forEach((l) => l(status)));
  }
}

const info: EngineInfo = {
  pid: 321,
  versions: { node: '20.20.2', onnxruntime: '1.30.0', protocol: 1 },
  providers: [
    { name: 'cpu', bundled: true, loads: true },
    { name: 'cuda', bundled: false, loads: false, error: 'Failed to load shared library' },
  ],
  activeProvider: 'cpu',
};
const ready: EngineStatus = { state: 'ready', restarts: 0, info };

function renderShell(client: Client) {
  return render(
    <ClientProvider client={client}>
      <App slots={featureSlots} />
    </ClientProvider>,
  );
}

afterEach(cleanup);

describe('shell', () => {
  it('shows the engine state and provider, and follows pushed changes', async () => {
    const client = new MemoryClient({ state: 'starting', restarts: 0 });
    renderShell(client);
    expect(await screen.findByRole('status')).toHaveProperty('textContent', 'Engine starting…');
    client.push(ready);
    expect(screen.getByRole('status').textContent).toBe('Engine ready · cpu');
    client.push({ ...ready, state: 'busy' });
    expect(screen.getByRole('status').textContent).toBe('Engine busy · cpu');
    // In the user's words: the signal is for Settings, not the status line.
    client.push({ ...ready, state: 'crashed', reason: 'killed by SIGKILL' });
    expect(screen.getByRole('status').textContent).toBe('Engine stopped unexpectedly · restarting');
    client.push({ ...ready, state: 'restarting', reason: 'killed by SIGKILL' });
    expect(screen.getByRole('status').textContent).toBe('Restarting the engine…');
    expect(screen.getByRole('status').dataset.state).toBe('restarting');
  });

  it('keeps sending disabled, with the reason, until a question can be asked', async () => {
    const client = new MemoryClient({ state: 'starting', restarts: 0 });
    renderShell(client);
    fireEvent.change(screen.getByRole('textbox', { name: 'Question' }), { target: { value: 'What is this?' } });
    expect(screen.getByRole('button', { name: 'Send' })).toHaveProperty('disabled', true);
    expect(await screen.findByText('The engine is starting…')).toBeTruthy();

    client.push(ready);
    expect(await screen.findByText(/No model installed/)).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Send' })).toHaveProperty('disabled', true);
    expect(client.calls.filter((c) => c.name === 'models.list')).toHaveLength(1);
  });

  it('lists installed models, refetching after the engine restarts', async () => {
    const client = new MemoryClient(ready, [{ id: 'tiny', name: 'Tiny LLaVA', path: '/m/tiny' }]);
    renderShell(client);
    fireEvent.click(screen.getByRole('button', { name: 'Models' }));
    expect(await screen.findByRole('listitem', { name: 'Tiny LLaVA' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Models' }).getAttribute('aria-current')).toBe('page');
    client.push({ ...ready, state: 'crashed', reason: 'oom' });
    client.push({ ...ready, restarts: 1 });
    await waitFor(() => expect(client.calls.filter((c) => c.name === 'models.list')).toHaveLength(2));
  });

  it('shows which providers load and restarts the engine from settings', async () => {
    const client = new MemoryClient(ready);
    renderShell(client);
    fireEvent.click(screen.getByRole('button', { name: 'Settings' }));
    expect(await screen.findByText('cpu (active)')).toBeTruthy();
    expect(screen.getByText('Failed to load shared library')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Restart engine' }));
    await waitFor(() => expect(client.calls.map((c) => c.name)).toContain('engine.restart'));
    fireEvent.click(screen.getByRole('button', { name: 'Run self test' }));
    expect(await screen.findByText('Self test: 200 runs on cpu, 0.013 ms each')).toBeTruthy();
  });

  it('has labelled landmarks for the sidebar, navigation and conversations', () => {
    renderShell(new MemoryClient(ready));
    expect(screen.getByRole('complementary', { name: 'Sidebar' })).toBeTruthy();
    expect(screen.getByRole('navigation', { name: 'Main' })).toBeTruthy();
    expect(screen.getByRole('region', { name: 'Conversations' }).textContent).toContain('No conversations yet.');
    expect(screen.getByRole('main')).toBeTruthy();
  });
});

describe('shell slots', () => {
  it('mounts feature components for the conversation list and views, with the engine status and models', async () => {
    const client = new MemoryClient(ready, [{ id: 'tiny', name: 'Tiny', path: '/m/tiny' }]);
    render(
      <ClientProvider client={client}>
        <App
          slots={{
            ...featureSlots,
            conversations: ({ status }) => <p>conversations see {status?.state}</p>,
            chat: ({ models }) => <p>chat sees {models?.map((m) => m.name).join(',')}</p>,
          }}
        />
      </ClientProvider>,
    );
    expect(await screen.findByText('conversations see ready')).toBeTruthy();
    expect(await screen.findByText('chat sees Tiny')).toBeTruthy();
    expect(screen.queryByText('No conversations yet.')).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Models' }));
    expect(await screen.findByRole('listitem', { name: 'Tiny' })).toBeTruthy();
  });
});

describe('ElectronClient', () => {
  it('maps call names onto the preload functions and passes on()', async () => {
    const seen: unknown[] = [];
    const api = {
      engine: { status: async (r: unknown) => ok({ via: 'engine.status', r }), restart: async () => ok(1), selfTest: async () => ok(2) },
      models: { list: async (r: unknown) => ok({ via: 'models.list', r }) },
      on: (event: string, listener: (p: unknown) => void) => {
        seen.push(event);
        listener('payload');
        return () => seen.push('unsubscribed');
      },
    } as unknown as WindowApi;
    const client = new ElectronClient(api);
    expect(await client.call('models.list', {})).toEqual({ ok: true, value: { via: 'models.list', r: {} } });
    expect(await client.call('engine.status', {})).toEqual({ ok: true, value: { via: 'engine.status', r: {} } });
    const got: unknown[] = [];
    client.on('engine.status', (p) => got.push(p))();
    expect(got).toEqual(['payload']);
    expect(seen).toEqual(['engine.status', 'unsubscribed']);
  });
});
