/**
 * The engine's only link to its parent. Under Electron the engine is a utilityProcess and
 * talks through `process.parentPort`; as a Node child process (web host, CLI, tests) it uses
 * the fork IPC channel. Nothing else in the engine knows which one it is.
 */
export interface ParentPort {
  /** Resolves once the message has been handed to the transport. */
  post(message: unknown): Promise<void>;
  onMessage(listener: (message: unknown) => void): void;
  /** Called when the parent goes away without a shutdown (it crashed or was killed). */
  onDisconnect(listener: () => void): void;
}

interface ElectronParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (event: { data: unknown }) => void): void;
}

export function connectToParent(): ParentPort {
  const electronPort = (process as { parentPort?: ElectronParentPort }).parentPort;
  if (electronPort) return electronParentPort(electronPort);
  if (process.send) return nodeParentPort();
  throw new Error('the engine must be started by the engine host (no parentPort and no IPC channel)');
}

function electronParentPort(port: ElectronParentPort): ParentPort {
  return {
    post: async (message) => port.postMessage(message),
    onMessage: (listener) => port.on('message', (event) => listener(event.data)),
    // A utility process is killed together with its parent; nothing to watch.
    onDisconnect: () => {},
  };
}

function nodeParentPort(): ParentPort {
  return {
    post: (message) =>
      new Promise((resolve, reject) => {
        process.send!(message, undefined, {}, (error) => (error ? reject(error) : resolve()));
      }),
    onMessage: (listener) => process.on('message', listener),
    onDisconnect: (listener) => process.on('disconnect', listener),
  };
}
