import type { ModelSummary } from '../../shared/ipc.js';
import { CodedError } from '../../shared/result.js';

export interface ImportProgressUpdate {
  done: number;
  total: number;
  message?: string;
}

/** What model management needs of the engine: import a checkpoint folder into the store, remove a pack. */
export interface ModelInstaller {
  import(path: string, onProgress: (progress: ImportProgressUpdate) => void, signal: AbortSignal): Promise<ModelSummary>;
  remove(id: string): Promise<void>;
}

/** One import at a time (it converts every layer and fills the disk); cancel aborts it between steps. */
export class ModelImports {
  private running: AbortController | undefined;

  constructor(
    private readonly installer: ModelInstaller,
    private readonly emit: (progress: ImportProgressUpdate) => void,
  ) {}

  async import(path: string): Promise<ModelSummary> {
    if (this.running) throw new CodedError('invalid-request', 'An import is already running; cancel it or wait for it to finish.');
    const controller = new AbortController();
    this.running = controller;
    try {
      return await this.installer.import(path, this.emit, controller.signal);
    } finally {
      this.running = undefined;
    }
  }

  cancel(): boolean {
    this.running?.abort();
    return this.running !== undefined;
  }
}
