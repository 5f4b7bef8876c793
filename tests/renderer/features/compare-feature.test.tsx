import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '../../../src/renderer/client/client.js';
import { CompareFeature } from '../../../src/renderer/features/compare/CompareFeature.js';
import { ClientProvider } from '../../../src/renderer/shell/client-context.js';
import type { ComparisonMessage } from '../../../src/shared/conversation.js';
import { ok } from '../../../src/shared/result.js';
import { DEFAULT_SETTINGS, type AppSettings } from '../../../src/shared/settings.js';

afterEach(cleanup);

/** A client whose settings arrive only when the test says so, as a slow bridge delivers them; it records what is saved. */
function slowSettings(settings: AppSettings) {
  let deliver = () => {};
  const saved: AppSettings[] = [];
  const client = {
    call: (name: string, request: unknown) => {
      if (name === 'settings.get') return new Promise((resolve) => (deliver = () => resolve(ok(settings))));
      if (name === 'settings.set') {
        saved.push(request as AppSettings);
        return Promise.resolve(ok(request));
      }
      return Promise.reject(new Error(`not used here: ${name}`));
    },
    on: () => () => {},
  } as unknown as Client;
  return { client, saved, deliver: () => act(async () => deliver()) };
}

const models = [
  { id: 'tiny', name: 'hf-tiny', path: '/models/tiny' },
  { id: 'second', name: 'hf-second', path: '/models/second' },
];
const ready = { status: { state: 'starting' as const, restarts: 0 }, models };
const kept: ComparisonMessage = {
  id: 'c1',
  role: 'comparison',
  text: 'What colour is the square?',
  images: [],
  createdAt: 0,
  left: { method: 'none', modelId: 'tiny', text: 'red', status: 'done' },
  right: { method: 'transprune-high', modelId: 'tiny', text: 'red', status: 'done' },
};

describe('compare feature', () => {
  it('keeps a pane model picked while the settings load: a kept comparison restored late must not undo it', async () => {
    const { client, deliver } = slowSettings({ ...DEFAULT_SETTINGS, compare: { left: 'fastv', right: 'pdrop' } });
    render(
      <ClientProvider client={client}>
        <CompareFeature {...ready} onInspect={() => {}} shown={kept} />
      </ClientProvider>,
    );
    const right = screen.getByLabelText('Right pane model') as HTMLSelectElement;
    expect(right.value).toBe('tiny'); // the kept comparison, shown at once
    fireEvent.change(right, { target: { value: 'second' } });
    await deliver();
    expect((screen.getByLabelText('Right pane model') as HTMLSelectElement).value).toBe('second');
    // The kept comparison's methods stand: the settings' compare methods are for a new comparison.
    expect((screen.getByLabelText('Left pane method') as HTMLSelectElement).value).toBe('none');
  });

  it('keeps a method picked while the settings load, and saves it into them, not over them with the defaults', async () => {
    const settings = { ...DEFAULT_SETTINGS, modelId: 'second', compare: { left: 'fastv', right: 'pdrop' } };
    const first = slowSettings(settings);
    const { unmount } = render(
      <ClientProvider client={first.client}>
        <CompareFeature {...ready} onInspect={() => {}} />
      </ClientProvider>,
    );
    await first.deliver();
    expect((screen.getByLabelText('Left pane method') as HTMLSelectElement).value).toBe('fastv');
    unmount();

    const second = slowSettings(settings);
    render(
      <ClientProvider client={second.client}>
        <CompareFeature {...ready} onInspect={() => {}} />
      </ClientProvider>,
    );
    fireEvent.change(screen.getByLabelText('Left pane method'), { target: { value: 'iga' } });
    expect(second.saved).toEqual([]); // nothing to save into yet
    await second.deliver();
    expect((screen.getByLabelText('Left pane method') as HTMLSelectElement).value).toBe('iga');
    expect(second.saved).toEqual([{ ...settings, compare: { left: 'iga', right: 'pdrop' } }]);
    fireEvent.change(screen.getByLabelText('Right pane method'), { target: { value: 'ttv' } });
    expect(second.saved.at(-1)).toEqual({ ...settings, compare: { left: 'iga', right: 'ttv' } });
  });
});
