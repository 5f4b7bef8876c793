import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalServerView } from '../../../src/renderer/features/settings/LocalServerView.js';
import { LocalServerOptions, type ApiLogEntry, type LocalServerStatus } from '../../../src/shared/ipc-server.js';

afterEach(cleanup);

const models = [{ id: '256bc2347cdc7c80', name: 'tiny' }];
const stopped: LocalServerStatus = { running: false, log: [] };

function props(status: LocalServerStatus, busy = false) {
  return { status, models, busy, onStart: vi.fn(), onStop: vi.fn(), onCopy: vi.fn() };
}

describe('local server switch', () => {
  it('starts with the options of `npm run serve` as set in the form', () => {
    const p = props(stopped);
    render(<LocalServerView {...p} />);
    const toggle = screen.getByRole('switch', { name: 'Local server' });
    expect(toggle.getAttribute('aria-checked')).toBe('false');
    fireEvent.change(screen.getByLabelText('Port'), { target: { value: '8080' } });
    fireEvent.change(screen.getByLabelText('Models'), { target: { value: 'tiny' } });
    fireEvent.change(screen.getByLabelText('Allowed web origin'), { target: { value: ' http://localhost:5173 ' } });
    fireEvent.click(screen.getByLabelText('Accept file:// image URLs'));
    fireEvent.click(screen.getByLabelText('Reachable from the network'));
    expect(screen.getByText(/Every computer that can reach this one and has the key can run the model/)).toBeTruthy();
    fireEvent.click(toggle);
    const options = p.onStart.mock.calls[0][0];
    expect(options).toEqual({
      port: 8080,
      model: 'tiny',
      requireKey: true,
      network: true,
      cors: 'http://localhost:5173',
      allowFileUrls: true,
    });
    // What the form sends is what the app API accepts.
    expect(LocalServerOptions.parse(options)).toEqual(options);
  });

  it('does not start on an impossible port', () => {
    const p = props(stopped);
    render(<LocalServerView {...p} />);
    fireEvent.change(screen.getByLabelText('Port'), { target: { value: '70000' } });
    expect((screen.getByRole('switch', { name: 'Local server' }) as HTMLButtonElement).disabled).toBe(true);
  });

  it('while running: the URL and key to copy, the options fixed, a warning when exposed, the requests newest first', () => {
    const log: ApiLogEntry[] = [
      {
        id: 'req-1',
        at: Date.UTC(2026, 11, 6, 19, 0, 0),
        method: 'GET',
        path: '/v1/models',
        status: 401,
        outcome: 'error',
        ms: 0,
        error: 'key',
      },
      {
        id: 'chatcmpl-2',
        at: Date.UTC(2026, 11, 6, 19, 0, 5),
        method: 'POST',
        path: '/v1/chat/completions',
        status: 200,
        outcome: 'done',
        ms: 812,
        model: 'tiny',
        stream: true,
        promptTokens: 34,
        completionTokens: 24,
      },
    ];
    const running: LocalServerStatus = {
      running: true,
      baseUrl: 'http://0.0.0.0:1234/v1',
      apiKey: 'tp-secret',
      exposed: true,
      options: LocalServerOptions.parse({ network: true }),
      log,
    };
    const p = props(running);
    render(<LocalServerView {...p} />);
    expect(screen.getByRole('switch', { name: 'Local server' }).getAttribute('aria-checked')).toBe('true');
    expect((screen.getByLabelText('Port').closest('fieldset') as HTMLFieldSetElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole('button', { name: 'Copy URL' }));
    fireEvent.click(screen.getByRole('button', { name: 'Copy key' }));
    expect(p.onCopy.mock.calls).toEqual([['http://0.0.0.0:1234/v1'], ['tp-secret']]);
    expect(screen.getByRole('alert').textContent).toContain('reachable from the network');
    const rows = within(screen.getByRole('table', { name: 'Requests' }))
      .getAllByRole('row')
      .slice(1);
    expect(rows.map((r) => r.textContent)).toEqual([
      expect.stringContaining('POST /v1/chat/completions · tiny · stream20034 + 24812 ms'),
      expect.stringContaining('GET /v1/models4010 ms'),
    ]);
    fireEvent.click(screen.getByRole('switch', { name: 'Local server' }));
    expect(p.onStop).toHaveBeenCalled();
  });

  it('without a key says so and offers nothing to copy', () => {
    render(<LocalServerView {...props({ running: true, baseUrl: 'http://127.0.0.1:1234/v1', apiKey: null, exposed: false, log: [] })} />);
    expect((screen.getByLabelText('API key') as HTMLInputElement).value).toBe('none required');
    expect((screen.getByLabelText('Base URL') as HTMLInputElement).value).toBe('http://127.0.0.1:1234/v1');
    expect(screen.queryByRole('button', { name: 'Copy key' })).toBeNull();
    expect(screen.getByText('No requests yet.')).toBeTruthy();
  });
});
