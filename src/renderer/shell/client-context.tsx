import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import type { EngineStatus, ModelSummary } from '../../shared/ipc.js';
import type { Client } from '../client/client.js';

const ClientContext = createContext<Client | null>(null);

export function ClientProvider({ client, children }: { client: Client; children: ReactNode }) {
  return <ClientContext.Provider value={client}>{children}</ClientContext.Provider>;
}

export function useClient(): Client {
  const client = useContext(ClientContext);
  if (!client) throw new Error('useClient needs a <ClientProvider>');
  return client;
}

/** The engine's status, live: the initial answer, then every pushed change. */
export function useEngineStatus(): EngineStatus | undefined {
  const client = useClient();
  const [status, setStatus] = useState<EngineStatus>();
  useEffect(() => {
    let pushed = false;
    const unsubscribe = client.on('engine.status', (next) => {
      pushed = true;
      setStatus(next);
    });
    void client.call('engine.status', {}).then((result) => {
      // A pushed status is newer than the answer to a request sent before it.
      if (result.ok && !pushed) setStatus(result.value);
    });
    return unsubscribe;
  }, [client]);
  return status;
}

export function isEngineUp(status: EngineStatus | undefined): boolean {
  return status?.state === 'ready' || status?.state === 'busy';
}

/** Installed models, fetched again whenever the engine comes (back) up. */
export function useModels(status: EngineStatus | undefined): { models: ModelSummary[] | undefined; error?: string } {
  const client = useClient();
  const up = isEngineUp(status);
  const [state, setState] = useState<{ models: ModelSummary[] | undefined; error?: string }>({ models: undefined });
  // biome-ignore lint/correctness/useExhaustiveDependencies: a restart brings up a new engine whose store may differ, so the list is fetched again
  useEffect(() => {
    if (!up) return;
    let live = true;
    void client.call('models.list', {}).then((result) => {
      if (live) setState(result.ok ? { models: result.value } : { models: undefined, error: result.error.message });
    });
    return () => {
      live = false;
    };
  }, [client, up, status?.restarts]);
  // Imports, downloads and removals push the new list.
  useEffect(() => client.on('models.changed', (models) => setState({ models })), [client]);
  return state;
}
