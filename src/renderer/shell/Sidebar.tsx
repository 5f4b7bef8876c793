import type { ReactNode } from 'react';

export type ViewId = 'chat' | 'models' | 'settings';

const NAV: { id: ViewId; label: string }[] = [
  { id: 'chat', label: 'Chat' },
  { id: 'models', label: 'Models' },
  { id: 'settings', label: 'Settings' },
];

/** Navigation plus the conversations area (the chat feature fills `conversations`). */
export function Sidebar({ view, onView, conversations }: { view: ViewId; onView: (view: ViewId) => void; conversations: ReactNode }) {
  return (
    <aside
      aria-label="Sidebar"
      className="flex w-60 shrink-0 flex-col border-r border-zinc-200 bg-zinc-50 dark:border-zinc-800 dark:bg-zinc-900"
    >
      <nav aria-label="Main" className="flex flex-col gap-1 p-2">
        {NAV.map(({ id, label }) => (
          <button
            key={id}
            type="button"
            aria-current={view === id ? 'page' : undefined}
            onClick={() => onView(id)}
            className="rounded-md px-3 py-2 text-left text-sm hover:bg-zinc-200 aria-[current=page]:bg-zinc-200 aria-[current=page]:font-medium dark:hover:bg-zinc-800 dark:aria-[current=page]:bg-zinc-800"
          >
            {label}
          </button>
        ))}
      </nav>
      <section aria-label="Conversations" className="flex min-h-0 flex-1 flex-col border-t border-zinc-200 p-2 dark:border-zinc-800">
        <h2 className="px-3 py-1 text-xs font-semibold tracking-wide text-zinc-500 uppercase">Conversations</h2>
        <div className="min-h-0 flex-1 overflow-y-auto">{conversations}</div>
      </section>
    </aside>
  );
}
