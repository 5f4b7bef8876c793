import { useEffect, useState } from 'react';
import type { CatalogueItem } from '../../../shared/catalogue.js';
import type { ImportPlan } from '../../../shared/dtypes.js';
import type { ModelSummary } from '../../../shared/ipc.js';
import type { ViewProps } from '../../shell/App.js';
import { useClient } from '../../shell/client-context.js';
import { callOrThrow } from '../common/calls.js';
import { ModelsView, type Check, type Task } from './ModelsView.js';
import { ErrorText } from '../common/ErrorText.js';

type Adding = 'import' | 'download';

/** Whether the browser thinks it is online, kept current by the online/offline events. */
function useOnline(): boolean {
  const [online, setOnline] = useState(() => navigator.onLine);
  useEffect(() => {
    const update = () => setOnline(navigator.onLine);
    window.addEventListener('online', update);
    window.addEventListener('offline', update);
    return () => {
      window.removeEventListener('online', update);
      window.removeEventListener('offline', update);
    };
  }, []);
  return online;
}

/**
 * The models slot: installed models (the engine's store), which one chats use, adding one (import a
 * checkpoint folder, or download by Hugging Face repo id) with progress and cancel, verification and removal.
 */
export function ModelsFeature({ models: shellModels, modelsError }: ViewProps) {
  const client = useClient();
  // The shell lists models when the engine comes up; after an import or removal this view lists them itself.
  const [models, setModels] = useState<ModelSummary[] | undefined>(shellModels);
  const [activeId, setActiveId] = useState<string>();
  const [tasks, setTasks] = useState<Record<Adding, Task>>({ import: {}, download: {} });
  const [adding, setAdding] = useState<Adding>();
  const online = useOnline();
  const [error, setError] = useState<string>();
  const [added, setAdded] = useState<string>();
  const [checks, setChecks] = useState<Record<string, Check>>({});
  const [importPlan, setImportPlan] = useState<{ plan?: ImportPlan; checking?: string; error?: string }>({});
  const [catalogue, setCatalogue] = useState<CatalogueItem[]>();

  useEffect(() => {
    callOrThrow(client, 'models.catalogue', {}).then(setCatalogue, (err: Error) => setError(err.message));
  }, [client]);

  useEffect(() => setModels(shellModels), [shellModels]);
  useEffect(() => {
    void callOrThrow(client, 'settings.get', {}).then(
      (s) => setActiveId(s.modelId ?? models?.[0]?.id),
      () => undefined,
    );
  }, [client, models]);
  useEffect(
    () =>
      client.on('models.progress', (progress) => {
        if (adding) setTasks((t) => ({ ...t, [adding]: { progress } }));
      }),
    [client, adding],
  );

  useEffect(
    () =>
      client.on('models.verifyProgress', ({ id, progress }) =>
        // A late event must not turn a finished check back into a running one.
        setChecks((c) => (c[id]?.progress ? { ...c, [id]: { progress } } : c)),
      ),
    [client],
  );

  /** Verify runs beside everything else (chats keep answering); its outcome stays on the model's row. */
  async function verify(id: string) {
    setChecks((c) => ({ ...c, [id]: { progress: { done: 0, total: 0, message: 'Starting the check' } } }));
    const outcome = await callOrThrow(client, 'models.verify', { id }).then(
      (result): Check => ({ result }),
      (err: Error): Check => ({ error: err.message }),
    );
    setChecks((c) => ({ ...c, [id]: outcome }));
  }

  const refresh = async () => {
    const list = await callOrThrow(client, 'models.list', {});
    setModels(list);
    return list;
  };
  const attempt = (work: () => Promise<unknown>) => async () => {
    try {
      await work();
      setError(undefined);
    } catch (err) {
      setError((err as Error).message);
    }
  };

  /** Import and download share the engine's one import slot, its progress events and its cancel. */
  async function add(kind: Adding, work: () => Promise<ModelSummary>, first: string) {
    setAdding(kind);
    setAdded(undefined);
    setTasks((t) => ({ ...t, [kind]: { progress: { done: 0, total: 0, message: first } } }));
    try {
      const model = await work();
      setTasks((t) => ({ ...t, [kind]: {} }));
      const list = await refresh();
      const settings = await callOrThrow(client, 'settings.get', {});
      const inUse = list.find((m) => m.id === settings.modelId) ?? list[0];
      // Main keeps the model in use; say so, and how to switch.
      setAdded(
        inUse && inUse.id !== model.id
          ? `${model.name} is installed. Chats still use ${inUse.name}: choose Use to switch.`
          : `${model.name} is installed and in use.`,
      );
    } catch (err) {
      setTasks((t) => ({ ...t, [kind]: { error: (err as Error).message } }));
    } finally {
      setAdding(undefined);
    }
  }

  if (!models) return <p className="p-4 text-zinc-500">{modelsError ?? 'Loading models…'}</p>;
  return (
    // The view's one scrolling pane (positioned, so screen-reader-only text inside never scrolls the page).
    <div className="relative min-h-0 flex-1 overflow-y-auto">
      <ErrorText message={error} className="m-4" />
      {added && (
        <p
          role="status"
          className="m-4 mb-0 rounded-md bg-emerald-50 p-2 text-sm text-emerald-800 dark:bg-emerald-950 dark:text-emerald-200"
        >
          {added}
        </p>
      )}
      <ModelsView
        models={models.map((m) => ({
          id: m.id,
          name: m.name,
          // Where it came from: importing that folder again after its files change updates this model.
          detail: m.details ? `imported from ${m.details.source}` : m.path,
          facts: m.details,
          capabilities: m.details?.visualTokens === 0 ? ['text only'] : ['vision', 'TransPrune'],
        }))}
        activeId={activeId}
        onUse={(id) =>
          void attempt(async () => {
            const settings = await callOrThrow(client, 'settings.get', {});
            await callOrThrow(client, 'settings.set', { ...settings, modelId: id });
            setActiveId(id);
          })()
        }
        onRemove={(id) =>
          void attempt(async () => {
            await callOrThrow(client, 'models.remove', { id });
            await refresh();
          })()
        }
        onVerify={(id) => void verify(id)}
        checks={checks}
        onPlan={(path) => {
          setImportPlan({ checking: `Reading ${path}…` });
          callOrThrow(client, 'models.plan', { path }).then(
            (plan) => setImportPlan({ plan }),
            (err: Error) => setImportPlan({ error: err.message }),
          );
        }}
        importPlan={importPlan}
        onCancelPlan={() => setImportPlan({})}
        onImport={(path, dtype) => {
          setImportPlan({});
          void add('import', () => callOrThrow(client, 'models.import', { path, dtype }), `Importing ${path} as ${dtype}`);
        }}
        onCancelImport={() => void callOrThrow(client, 'models.cancelImport', {})}
        importTask={tasks.import}
        onDownload={({ repoId, files, name }) =>
          void add('download', () => callOrThrow(client, 'models.download', { repoId, files }), `Asking Hugging Face for ${name}`)
        }
        catalogue={catalogue}
        onCancelDownload={() => void callOrThrow(client, 'models.cancelImport', {})}
        downloadTask={tasks.download}
        online={online}
      />
    </div>
  );
}
