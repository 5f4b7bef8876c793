import { useEffect, useState } from 'react';
import type { ModelSummary } from '../../../shared/ipc.js';
import type { ViewProps } from '../../shell/App.js';
import { useClient } from '../../shell/client-context.js';
import { callOrThrow } from '../common/client.js';
import { ModelsView, type Task } from './ModelsView.js';

/**
 * The models slot: installed models (the engine's store), which one chats use, import of a checkpoint
 * folder with progress and cancel, and removal. Download by repo id needs a downloader that does not exist yet.
 */
export function ModelsFeature({ models: shellModels, modelsError }: ViewProps) {
  const client = useClient();
  // The shell lists models when the engine comes up; after an import or removal this view lists them itself.
  const [models, setModels] = useState<ModelSummary[] | undefined>(shellModels);
  const [activeId, setActiveId] = useState<string>();
  const [importTask, setImportTask] = useState<Task>({});
  const [error, setError] = useState<string>();

  useEffect(() => setModels(shellModels), [shellModels]);
  useEffect(() => {
    void callOrThrow(client, 'settings.get', {}).then((s) => setActiveId(s.modelId ?? models?.[0]?.id), () => undefined);
  }, [client, models]);
  useEffect(() => client.on('models.progress', (progress) => setImportTask({ progress })), [client]);

  const refresh = async () => setModels(await callOrThrow(client, 'models.list', {}));
  const attempt = (work: () => Promise<unknown>) => async () => {
    try {
      await work();
      setError(undefined);
    } catch (err) {
      setError((err as Error).message);
    }
  };

  async function importFolder(path: string) {
    setImportTask({ progress: { done: 0, total: 0, message: `Checking ${path}` } });
    try {
      await callOrThrow(client, 'models.import', { path });
      setImportTask({});
      await refresh();
    } catch (err) {
      setImportTask({ error: (err as Error).message });
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
      <ModelsView
        models={models.map((m) => ({ id: m.id, name: m.name, detail: m.path, capabilities: ['vision', 'TransPrune'] }))}
        activeId={activeId}
        onUse={(id) =>
          void attempt(async () => {
            const settings = await callOrThrow(client, 'settings.get', {});
            await callOrThrow(client, 'settings.set', { ...settings, modelId: id });
            setActiveId(id);
          })()
        }
        onRemove={(id) => void attempt(async () => (await callOrThrow(client, 'models.remove', { id }), await refresh()))()}
        onImport={(path) => void importFolder(path)}
        onCancelImport={() => void callOrThrow(client, 'models.cancelImport', {})}
        importTask={importTask}
      />
    </div>
  );
}
