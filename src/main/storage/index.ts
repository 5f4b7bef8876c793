import { dirname, join } from 'node:path';
import { removeTempFiles } from './atomicFile.js';
import { ConversationStore } from './conversations.js';
import { ImageStore } from './images.js';
import { SettingsStore } from './settings.js';
import { TraceStore } from './traces.js';

export { ConversationStore, DEFAULT_TITLE, type AnswerOutcome, type AnswerTarget } from './conversations.js';
export { IMAGE_LIMITS, ImageStore } from './images.js';
export { SettingsStore } from './settings.js';
export { TraceStore } from './traces.js';
export { StorageError, type StorageProblem } from './errors.js';

export interface Storage {
  conversations: ConversationStore;
  images: ImageStore;
  settings: SettingsStore;
  traces: TraceStore;
  /** Where models downloaded from Hugging Face wait to be imported. */
  downloadsDir: string;
  /** Start-up: removes temp files of writes cut short by a crash; returns how many. */
  removeTempFiles(): Promise<number>;
}

/**
 * Everything the app keeps under the user-data folder. Plain Node (no electron), so the Electron main
 * process and the web host open the same storage the same way.
 */
export function openStorage(userDataDir: string): Storage {
  const storage = {
    conversations: new ConversationStore(join(userDataDir, 'conversations')),
    images: new ImageStore(join(userDataDir, 'images')),
    settings: new SettingsStore(join(userDataDir, 'settings.json')),
    traces: new TraceStore(join(userDataDir, 'traces')),
    downloadsDir: join(userDataDir, 'downloads'),
  };
  const written = [
    storage.conversations.dir,
    storage.images.dir,
    join(storage.images.dir, 'thumbs'),
    storage.traces.dir,
    dirname(storage.settings.file),
  ];
  return {
    ...storage,
    removeTempFiles: async () => (await Promise.all(written.map(removeTempFiles))).reduce((a, b) => a + b, 0),
  };
}
