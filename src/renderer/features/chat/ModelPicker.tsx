import { useEffect, useState } from 'react';
import type { ModelSummary } from '../../../shared/ipc.js';
import { useClient } from '../../shell/client-context.js';
import { callOrThrow } from '../common/calls.js';
import { formatParameters } from '../common/format.js';

/** The model chats use: the chosen one while it is installed, else the first installed (as the engine picks). */
export function modelInUse(models: ModelSummary[], chosen: string | undefined): ModelSummary | undefined {
  return models.find((m) => m.id === chosen) ?? models[0];
}

/**
 * The model in use, in the chat header, switchable there: the open conversation's own model, or with none
 * open the global one new chats start with (saved in the settings).
 */
export function ModelPicker({
  models,
  conversation,
}: {
  models: ModelSummary[] | undefined;
  conversation?: { modelId?: string; choose(modelId: string): Promise<void> };
}) {
  const client = useClient();
  // undefined until the settings are read: only then is it known which model is in use.
  const [chosen, setChosen] = useState<{ modelId?: string }>();
  const [error, setError] = useState<string>();
  // biome-ignore lint/correctness/useExhaustiveDependencies: a changed model list can come with a changed choice (an import pins it)
  useEffect(() => {
    callOrThrow(client, 'settings.get', {}).then(
      (s) => setChosen({ modelId: s.modelId }),
      (err: Error) => setError(err.message),
    );
  }, [client, models]);
  if (!models || models.length === 0 || !chosen) return null;

  async function choose(modelId: string) {
    if (conversation) return conversation.choose(modelId);
    setChosen({ modelId });
    try {
      const settings = await callOrThrow(client, 'settings.get', {});
      await callOrThrow(client, 'settings.set', { ...settings, modelId });
      setError(undefined);
    } catch (err) {
      setError(`The model was not switched: ${(err as Error).message}`);
    }
  }
  return (
    <label className="flex min-w-0 items-center gap-1 text-sm text-zinc-600 dark:text-zinc-300" title={error}>
      <span className={error ? 'text-red-600' : undefined}>Model</span>
      <select
        aria-label="Model"
        aria-invalid={error !== undefined}
        value={modelInUse(models, conversation ? (conversation.modelId ?? chosen.modelId) : chosen.modelId)?.id}
        onChange={(e) => void choose(e.target.value)}
        className="min-w-0 max-w-56 truncate rounded-md border border-zinc-300 bg-white px-2 py-1 text-sm dark:border-zinc-700 dark:bg-zinc-900"
      >
        {models.map((m) => (
          <option key={m.id} value={m.id}>
            {m.name}
            {m.details ? ` · ${formatParameters(m.details.parameters)} · ${m.details.dtype}` : ''}
          </option>
        ))}
      </select>
    </label>
  );
}
