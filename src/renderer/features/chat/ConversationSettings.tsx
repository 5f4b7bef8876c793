import { useEffect, useState, type FormEvent } from 'react';
import type { ModelSummary } from '../../../shared/ipc.js';
import { ConversationSettings } from '../../../shared/settings.js';
import { methodLabel, MethodSelect } from '../settings/methods.js';
import { modelInUse } from './ModelPicker.js';

const field = 'rounded-md border border-zinc-300 bg-white px-2 py-1 text-sm dark:border-zinc-600 dark:bg-zinc-900';

/**
 * This conversation's own settings (model, method, system prompt, max new tokens, temperature), folded
 * under a one-line summary; new chats start from the global ones in Settings. Saved with Save.
 */
export function ConversationSettingsPanel({
  settings,
  models,
  onSave,
}: {
  settings: ConversationSettings;
  models: ModelSummary[];
  onSave(settings: ConversationSettings): Promise<void>;
}) {
  const [draft, setDraft] = useState(settings);
  // Saved elsewhere too (the header's model picker): what is stored is what the form shows.
  useEffect(() => setDraft(settings), [settings]);
  const [problem, setProblem] = useState<string>();
  const [saved, setSaved] = useState(false);
  const model = modelInUse(models, settings.modelId);
  const set = (patch: Partial<ConversationSettings>) => {
    setDraft((d) => ({ ...d, ...patch }));
    setSaved(false);
  };
  async function save(event: FormEvent) {
    event.preventDefault();
    const parsed = ConversationSettings.safeParse(draft);
    if (!parsed.success) return setProblem(parsed.error.issues[0].message);
    setProblem(undefined);
    await onSave(parsed.data);
    setSaved(true);
  }
  return (
    <details className="group min-w-0 text-xs text-zinc-500 dark:text-zinc-400">
      <summary className="cursor-pointer truncate rounded px-2 py-0.5 hover:bg-zinc-100 hover:text-zinc-900 dark:hover:bg-zinc-800 dark:hover:text-zinc-100">
        This chat: {model?.name ?? 'no model'} · {methodLabel(settings.method)}
        {settings.systemPrompt ? ' · system prompt' : ''}
      </summary>
      <form
        aria-label="This chat's settings"
        onSubmit={(e) => void save(e)}
        className="mt-1 grid grid-cols-[auto_minmax(0,1fr)] items-center gap-x-3 gap-y-2 rounded-lg border border-zinc-200 p-3 text-sm text-zinc-800 dark:border-zinc-800 dark:text-zinc-200"
      >
        <label htmlFor="chat-model">Model</label>
        <select
          id="chat-model"
          className={`${field} min-w-0`}
          value={modelInUse(models, draft.modelId)?.id}
          onChange={(e) => set({ modelId: e.target.value })}
        >
          {models.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name}
            </option>
          ))}
        </select>
        <label htmlFor="chat-method">Pruning method</label>
        <MethodSelect id="chat-method" label="Pruning method" value={draft.method} onChange={(method) => set({ method })} />
        <label htmlFor="chat-system">System prompt</label>
        <textarea
          id="chat-system"
          rows={2}
          className={field}
          value={draft.systemPrompt}
          placeholder="None: the model's own chat template"
          onChange={(e) => set({ systemPrompt: e.target.value })}
        />
        <label htmlFor="chat-max-tokens">Max new tokens</label>
        <input
          id="chat-max-tokens"
          type="number"
          min={1}
          max={4096}
          className={`${field} w-28`}
          value={draft.maxTokens}
          onChange={(e) => set({ maxTokens: Number(e.target.value) })}
        />
        <label htmlFor="chat-temperature">Temperature (0 = greedy)</label>
        <input
          id="chat-temperature"
          type="number"
          min={0}
          max={2}
          step={0.1}
          className={`${field} w-28`}
          value={draft.temperature}
          onChange={(e) => set({ temperature: Number(e.target.value) })}
        />
        <div className="col-span-2 flex items-center gap-3">
          <button type="submit" className="rounded-md bg-sky-600 px-3 py-1 text-sm font-medium text-white hover:bg-sky-700">
            Save for this chat
          </button>
          {problem && (
            <span role="alert" className="text-red-600">
              {problem}
            </span>
          )}
          {saved && !problem && <span role="status">Saved: the next answer in this chat uses these.</span>}
        </div>
      </form>
    </details>
  );
}
