import { useEffect, useState } from 'react';
import type { ViewProps } from '../../shell/App.js';
import { useClient } from '../../shell/client-context.js';
import { callOrThrow } from '../common/client.js';
import { ModelsView } from './ModelsView.js';

/**
 * The models slot: installed models (from the engine's store) and which one chats use. Import and
 * download need engine calls that do not exist yet, so the view says how to import with the CLI.
 */
export function ModelsFeature({ models, modelsError }: ViewProps) {
  const client = useClient();
  const [activeId, setActiveId] = useState<string>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    void callOrThrow(client, 'settings.get', {}).then((s) => setActiveId(s.modelId ?? models?.[0]?.id));
  }, [client, models]);

  async function use(id: string) {
    try {
      const settings = await callOrThrow(client, 'settings.get', {});
      await callOrThrow(client, 'settings.set', { ...settings, modelId: id });
      setActiveId(id);
    } catch (err) {
      setError((err as Error).message);
    }
  }

  if (!models) return <p className="p-4 text-zinc-500">{modelsError ?? 'Loading models…'}</p>;
  return (
    <div className="overflow-y-auto">
      {error && (
        <p role="alert" className="m-4 text-sm text-red-600">
          {error}
        </p>
      )}
      <ModelsView models={models.map((m) => ({ id: m.id, name: m.name, detail: m.path, capabilities: ['vision'] }))} activeId={activeId} onUse={(id) => void use(id)} />
    </div>
  );
}
