import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ImportPlan, WeightDtype } from '../../shared/dtypes.js';
import type { ModelSummary } from '../../shared/ipc.js';
import type { PackVerification } from '../../shared/ipc-features.js';
import type { Progress } from '../../shared/progress.js';
import { CodedError } from '../../shared/result.js';
import { downloadCheckpoint, HF_ENDPOINT } from './download.js';

/** What model management needs of the engine: import a checkpoint folder into the store, verify or remove a pack. */
export interface ModelInstaller {
  /** Reads the checkpoint folder at `path` without writing anything: its footprint at each precision. */
  plan(path: string): Promise<ImportPlan>;
  import(
    path: string,
    dtype: WeightDtype | undefined,
    onProgress: (progress: Progress) => void,
    signal: AbortSignal,
  ): Promise<ModelSummary>;
  /** Hashes the pack's weight files against its manifest; the engine keeps answering other calls meanwhile. */
  verify(id: string, onProgress: (progress: Progress) => void): Promise<PackVerification>;
  remove(id: string): Promise<void>;
  list(): Promise<ModelSummary[]>;
}

/**
 * Adding models: import a checkpoint folder, or download one from Hugging Face into `downloadsDir` and
 * import it. One at a time (an import converts every layer and fills the disk); cancel aborts either.
 */
export class ModelImports {
  private running: AbortController | undefined;

  constructor(
    private readonly installer: ModelInstaller,
    private readonly emit: (progress: Progress) => void,
    private readonly downloadsDir: string,
    private readonly endpoint = HF_ENDPOINT,
  ) {}

  import(path: string, dtype?: WeightDtype): Promise<ModelSummary> {
    return this.exclusive((signal) => this.installer.import(path, dtype, this.emit, signal));
  }

  download(repoId: string): Promise<ModelSummary> {
    return this.exclusive(async (signal) => {
      const dir = await downloadCheckpoint(repoId, join(this.downloadsDir, repoId.replace('/', '--')), this.emit, signal, this.endpoint);
      return this.installer.import(dir, undefined, this.emit, signal);
    });
  }

  private async exclusive(work: (signal: AbortSignal) => Promise<ModelSummary>): Promise<ModelSummary> {
    if (this.running) throw new CodedError('invalid-request', 'A model is already being added; cancel it or wait for it to finish.');
    const controller = new AbortController();
    this.running = controller;
    try {
      return await work(controller.signal);
    } finally {
      this.running = undefined;
    }
  }

  cancel(): boolean {
    this.running?.abort();
    return this.running !== undefined;
  }
}

/** `~` and `~/...` mean the user's home, as in a shell; the app's own working folder means nothing to the user. */
export function expandHome(path: string, home = homedir()): string {
  const trimmed = path.trim();
  if (trimmed === '~') return home;
  return /^~[/\\]/.test(trimmed) ? join(home, trimmed.slice(2)) : trimmed;
}
