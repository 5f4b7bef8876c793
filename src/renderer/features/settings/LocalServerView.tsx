import { useState } from 'react';
import { LocalServerOptions, type ApiLogEntry, type LocalServerStatus } from '../../../shared/ipc-server.js';

export interface LocalServerViewProps {
  status: LocalServerStatus | undefined;
  models: { id: string; name: string }[];
  /** A start or stop is under way. */
  busy: boolean;
  onStart(options: LocalServerOptions): void;
  onStop(): void;
  onCopy(text: string): void;
}

/** Requests the log shows, newest first. */
const SHOWN_REQUESTS = 50;
const field = 'rounded-md border border-zinc-300 bg-white px-2 py-1 text-sm disabled:opacity-60 dark:border-zinc-600 dark:bg-zinc-900';
const button = 'rounded-md border border-zinc-300 px-2 py-1 text-sm dark:border-zinc-700';

/**
 * The "Local server" switch: the OpenAI-compatible server over this app's engine and settings, its options
 * (those of `npm run serve`; fixed while it runs), its URL and key to copy, and the requests it served.
 */
export function LocalServerView({ status, models, busy, onStart, onStop, onCopy }: LocalServerViewProps) {
  const [draft, setDraft] = useState<LocalServerOptions>(() => status?.options ?? LocalServerOptions.parse({}));
  const running = status?.running === true;
  const set = (patch: Partial<LocalServerOptions>) => setDraft({ ...draft, ...patch });
  const portValid = Number.isInteger(draft.port) && draft.port >= 0 && draft.port <= 65535;

  return (
    <section aria-label="Local server" className="max-w-xl p-4">
      <div className="mb-3 flex items-center gap-3">
        <h2 className="text-lg font-semibold">Local server</h2>
        <button
          type="button"
          role="switch"
          aria-checked={running}
          aria-label="Local server"
          disabled={busy || (!running && !portValid)}
          onClick={() => (running ? onStop() : onStart(draft))}
          className={`h-6 w-11 rounded-full p-0.5 transition-colors disabled:opacity-50 ${running ? 'bg-sky-600' : 'bg-zinc-300 dark:bg-zinc-700'}`}
        >
          <span className={`block h-5 w-5 rounded-full bg-white transition-transform ${running ? 'translate-x-5' : ''}`} />
        </button>
      </div>
      <p className="mb-3 text-sm text-zinc-500">
        An OpenAI-compatible API (chat completions) on this computer, for scripts, notebooks and other apps; TransPrune is a request option.
        The same server as <code>npm run serve</code>.
      </p>

      <fieldset disabled={running || busy} className="grid grid-cols-[auto_minmax(0,1fr)] items-center gap-x-4 gap-y-2 text-sm">
        <label htmlFor="server-port">Port</label>
        <input
          id="server-port"
          type="number"
          min={0}
          max={65535}
          className={`${field} w-28 ${portValid ? '' : 'border-red-500'}`}
          value={Number.isNaN(draft.port) ? '' : draft.port}
          onChange={(e) => set({ port: e.target.valueAsNumber })}
        />
        <label htmlFor="server-model">Models</label>
        <select
          id="server-model"
          className={`${field} min-w-0`}
          value={draft.model ?? ''}
          onChange={(e) => set({ model: e.target.value || undefined })}
        >
          <option value="">All installed models</option>
          {models.map((m) => (
            <option key={m.id} value={m.name}>
              {m.name} only
            </option>
          ))}
        </select>
        <label htmlFor="server-cors">Allowed web origin</label>
        <input
          id="server-cors"
          className={`${field} min-w-0`}
          placeholder="none (no CORS)"
          value={draft.cors ?? ''}
          onChange={(e) => set({ cors: e.target.value.trim() || undefined })}
        />
        <div className="col-span-2 flex flex-col gap-1">
          <Check label="Require an API key" checked={draft.requireKey} onChange={(requireKey) => set({ requireKey })} />
          <Check label="Accept file:// image URLs" checked={draft.allowFileUrls} onChange={(allowFileUrls) => set({ allowFileUrls })} />
          <Check label="Reachable from the network" checked={draft.network} onChange={(network) => set({ network })} />
          {draft.network && (
            <p className="text-xs text-amber-700 dark:text-amber-400">
              Every computer that can reach this one {draft.requireKey ? 'and has the key ' : ''}can run the model.
            </p>
          )}
        </div>
      </fieldset>

      {running && status && (
        <div className="mt-4 grid grid-cols-[auto_minmax(0,1fr)_auto] items-center gap-x-3 gap-y-2 text-sm">
          <label htmlFor="server-url">Base URL</label>
          <input id="server-url" readOnly className={`${field} min-w-0 font-mono`} value={status.baseUrl ?? ''} />
          <button type="button" className={button} onClick={() => onCopy(status.baseUrl ?? '')}>
            Copy URL
          </button>
          <label htmlFor="server-key">API key</label>
          <input id="server-key" readOnly className={`${field} min-w-0 font-mono`} value={status.apiKey ?? 'none required'} />
          {status.apiKey ? (
            <button type="button" className={button} onClick={() => onCopy(status.apiKey ?? '')}>
              Copy key
            </button>
          ) : (
            <span />
          )}
          {status.exposed && (
            <p role="alert" className="col-span-3 text-amber-700 dark:text-amber-400">
              Listening on every network interface: reachable from the network.
            </p>
          )}
        </div>
      )}

      <RequestLog entries={status?.log ?? []} />
    </section>
  );
}

function Check({ label, checked, onChange }: { label: string; checked: boolean; onChange(checked: boolean): void }) {
  return (
    <label className="flex items-center gap-2">
      <input type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} />
      {label}
    </label>
  );
}

function RequestLog({ entries }: { entries: ApiLogEntry[] }) {
  if (entries.length === 0) return <p className="mt-4 text-sm text-zinc-500">No requests yet.</p>;
  return (
    <table className="mt-4 w-full table-fixed text-sm" aria-label="Requests">
      <thead>
        <tr className="text-left text-zinc-500">
          <th className="w-24 font-normal">Time</th>
          <th className="font-normal">Request</th>
          <th className="w-14 font-normal">Status</th>
          <th className="w-24 font-normal">Tokens</th>
          <th className="w-20 font-normal">Time taken</th>
        </tr>
      </thead>
      <tbody>
        {entries
          .slice(-SHOWN_REQUESTS)
          .reverse()
          .map((e) => (
            <tr key={e.id} title={e.error}>
              <td className="font-mono">{new Date(e.at).toLocaleTimeString()}</td>
              <td className="truncate">
                {e.method} {e.path}
                {e.model && ` · ${e.model}`}
                {e.stream && ' · stream'}
                {e.outcome === 'cancelled' && ' · cancelled'}
              </td>
              <td className={e.status >= 400 ? 'text-red-600' : ''}>{e.status}</td>
              <td>{e.promptTokens === undefined ? '' : `${e.promptTokens} + ${e.completionTokens}`}</td>
              <td>{e.ms} ms</td>
            </tr>
          ))}
      </tbody>
    </table>
  );
}
