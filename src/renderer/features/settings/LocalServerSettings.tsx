import { useEffect, useState } from 'react';
import type { LocalServerStatus } from '../../../shared/ipc-server.js';
import { useClient } from '../../shell/client-context.js';
import { callOrThrow } from '../common/calls.js';
import { ErrorText } from '../common/ErrorText.js';
import { LocalServerView } from './LocalServerView.js';

/** The local server's state from main (which owns the server), its requests as they finish, and the switch's calls. */
export function LocalServerSettings({ models }: { models: { id: string; name: string }[] }) {
  const client = useClient();
  const [status, setStatus] = useState<LocalServerStatus>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  useEffect(() => {
    callOrThrow(client, 'server.status', {}).then(setStatus, (err: Error) => setError(err.message));
    return client.on('server.log', (entry) => setStatus((current) => current && { ...current, log: [...current.log, entry] }));
  }, [client]);

  async function change(call: () => Promise<LocalServerStatus>) {
    setBusy(true);
    try {
      setStatus(await call());
      setError(undefined);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <ErrorText message={error} className="mx-4" />
      {status && (
        <LocalServerView
          status={status}
          models={models}
          busy={busy}
          onStart={(options) => void change(() => callOrThrow(client, 'server.start', options))}
          onStop={() => void change(() => callOrThrow(client, 'server.stop', {}))}
          onCopy={(text) => void navigator.clipboard?.writeText(text).catch(() => setError('Could not copy to the clipboard.'))}
        />
      )}
    </>
  );
}
