import type { ModelSummary } from '../../shared/ipc.js';

export function ModelsView({ models, error }: { models: ModelSummary[] | undefined; error?: string }) {
  return (
    <section aria-label="Models" className="flex-1 overflow-y-auto p-6">
      <h1 className="mb-4 text-lg font-semibold">Models</h1>
      {error && (
        <p role="alert" className="text-sm text-red-600">
          Could not list models: {error}
        </p>
      )}
      {!error && models === undefined && <p className="text-sm text-zinc-500">Waiting for the engine…</p>}
      {models?.length === 0 && (
        <p className="text-sm text-zinc-500">
          No models installed. Import a Hugging Face LLaVA-1.5 folder with <code>npm run cli -- import</code>.
        </p>
      )}
      {models && models.length > 0 && (
        <ul className="divide-y divide-zinc-200 dark:divide-zinc-800">
          {models.map((m) => (
            <li key={m.id} className="py-2">
              <div className="font-medium">{m.name}</div>
              <div className="text-xs text-zinc-500">{m.path}</div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
