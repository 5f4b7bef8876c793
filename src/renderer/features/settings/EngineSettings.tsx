import { useState } from 'react';
import type { EngineStatus } from '../../../shared/ipc.js';
import { isEngineUp, useClient } from '../../shell/client-context.js';

/** Engine facts (versions, which execution providers load and why not) and the engine controls. */
export function EngineSettings({ status }: { status: EngineStatus | undefined }) {
  const client = useClient();
  const [note, setNote] = useState<string>();
  const info = status?.info;

  const restart = async () => {
    setNote('Restarting the engine…');
    const result = await client.call('engine.restart', {});
    setNote(result.ok ? undefined : `Restart failed: ${result.error.message}`);
  };
  const selfTest = async () => {
    setNote('Running the self test…');
    const result = await client.call('engine.selfTest', { runs: 200 });
    setNote(
      result.ok
        ? `Self test: ${result.value.runs} runs on ${result.value.provider}, ${result.value.meanMs.toFixed(3)} ms each`
        : `Self test failed: ${result.error.message}`,
    );
  };

  return (
    <section aria-label="Engine" className="p-4">
      <h1 className="mb-4 text-lg font-semibold">Engine</h1>
      {info ? (
        <>
          <p className="mb-3 text-sm">
            onnxruntime {info.versions.onnxruntime} · Node {info.versions.node} · process {info.pid} · restarts {status?.restarts}
          </p>
          {status?.lastCrash && <p className="mb-3 text-sm text-zinc-500">Last restart: {status.lastCrash}</p>}
          <table className="mb-4 w-full table-fixed text-sm">
            <caption className="sr-only">Execution providers</caption>
            <thead>
              <tr className="text-left text-zinc-500">
                <th className="w-32 pr-6 font-normal">Provider</th>
                <th className="w-16 pr-6 font-normal">Loads</th>
                <th className="font-normal">Note</th>
              </tr>
            </thead>
            <tbody>
              {info.providers.map((p) => (
                <tr key={p.name}>
                  <td className="pr-6">
                    {p.name}
                    {p.name === info.activeProvider && ' (active)'}
                  </td>
                  <td className="pr-6">{p.loads ? 'yes' : 'no'}</td>
                  <td className="truncate text-zinc-500" title={p.error}>
                    {p.error ?? (p.bundled ? '' : 'installed separately')}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : (
        <p className="mb-4 text-sm text-zinc-500">No engine information yet.</p>
      )}
      <div className="flex gap-2">
        <button type="button" onClick={restart} className="rounded-md border border-zinc-300 px-3 py-2 text-sm dark:border-zinc-700">
          Restart engine
        </button>
        <button
          type="button"
          onClick={selfTest}
          disabled={!isEngineUp(status)}
          className="rounded-md border border-zinc-300 px-3 py-2 text-sm disabled:opacity-50 dark:border-zinc-700"
        >
          Run self test
        </button>
      </div>
      {note && (
        <p className="mt-3 text-sm" role="note">
          {note}
        </p>
      )}
    </section>
  );
}
