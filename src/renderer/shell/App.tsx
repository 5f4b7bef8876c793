import { useState, type ComponentType } from 'react';
import type { EngineStatus, ModelSummary } from '../../shared/ipc.js';
import { useEngineStatus, useModels } from './client-context.js';
import { EngineStatusBadge } from './EngineStatusBadge.js';
import { Sidebar, type ViewId } from './Sidebar.js';
import { ThemeSelect } from './theme.js';

/** What every view receives from the shell. */
export interface ViewProps {
  status: EngineStatus | undefined;
  models: ModelSummary[] | undefined;
  modelsError?: string;
  /** Opens another view (the empty chat's "Choose a model" opens Models). */
  onView?(view: ViewId): void;
}

/** The mount points the features fill (src/renderer/features featureSlots; main.tsx passes them). */
export interface ShellSlots {
  /** The sidebar's conversation list. */
  conversations: ComponentType<ViewProps>;
  chat: ComponentType<ViewProps>;
  models: ComponentType<ViewProps>;
  settings: ComponentType<ViewProps>;
}

/** The window frame: title bar with the engine status, sidebar, and the current view. Needs a ClientProvider. */
export function App({ slots }: { slots: ShellSlots }) {
  const status = useEngineStatus();
  const { models, error } = useModels(status);
  const [view, setView] = useState<ViewId>('chat');
  const View = slots[view];
  const Conversations = slots.conversations;
  const viewProps: ViewProps = { status, models, modelsError: error, onView: setView };

  return (
    <div className="flex h-screen flex-col bg-white text-zinc-900 dark:bg-zinc-950 dark:text-zinc-100">
      <header className="flex h-11 shrink-0 items-center justify-between border-b border-zinc-200 px-4 dark:border-zinc-800">
        <span className="truncate text-sm font-semibold">TransPrune Studio</span>
        <div className="flex min-w-0 items-center gap-2">
          <ThemeSelect />
          <EngineStatusBadge status={status} />
        </div>
      </header>
      <div className="flex min-h-0 flex-1">
        <Sidebar view={view} onView={setView} conversations={<Conversations {...viewProps} />} />
        <main className="flex min-h-0 min-w-0 flex-1 flex-col">
          <View {...viewProps} />
        </main>
      </div>
    </div>
  );
}
