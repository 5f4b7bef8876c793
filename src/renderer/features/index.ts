import type { ShellSlots } from '../shell/App.js';
import { ChatFeature, ConversationsFeature } from './chat/ChatFeature.js';
import { ModelsFeature } from './models/ModelsFeature.js';
import { SettingsFeature } from './settings/SettingsFeature.js';

/** The features mounted into the shell (src/renderer/main.tsx passes these to <App slots>). */
export const featureSlots: ShellSlots = {
  conversations: ConversationsFeature,
  chat: ChatFeature,
  models: ModelsFeature,
  settings: SettingsFeature,
};
