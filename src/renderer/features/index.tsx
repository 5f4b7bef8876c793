import type { ComponentType } from 'react';
import type { ShellSlots, ViewProps } from '../shell/App.js';
import { ChatFeature, ConversationsFeature } from './chat/ChatFeature.js';
import { ErrorBoundary } from './common/ErrorBoundary.js';
import { ModelsFeature } from './models/ModelsFeature.js';
import { SettingsFeature } from './settings/SettingsFeature.js';

/** A slot view inside an error boundary, so a failure shows inline instead of a blank window. */
function guarded(label: string, View: ComponentType<ViewProps>): ComponentType<ViewProps> {
  const Guarded = (props: ViewProps) => (
    <ErrorBoundary label={label}>
      <View {...props} />
    </ErrorBoundary>
  );
  Guarded.displayName = `Guarded(${label})`;
  return Guarded;
}

/** The features mounted into the shell (src/renderer/main.tsx passes these to <App slots>). */
export const featureSlots: ShellSlots = {
  conversations: guarded('conversations', ConversationsFeature),
  chat: guarded('chat', ChatFeature),
  models: guarded('models', ModelsFeature),
  settings: guarded('settings', SettingsFeature),
};
