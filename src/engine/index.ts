// The engine's public entry point for the processes that host it (Electron main, the web host): the
// little they run in their own process. Everything else they ask of the engine goes through its
// messages (src/shared/ipc.ts) to the engine process (src/engine/worker/entry.ts).

/** Image intake: the app checks a dropped image with the same rules the engine's preprocessing applies. */
export { ImageError, validateImage, type ImageFormat, type ImageInfo, type ImageLimits } from './image/validate.js';

/** First launch: whether the app's bundled demo folder holds a model to install. */
export { holdsCheckpoint } from './pack/checkpoint-folder.js';
