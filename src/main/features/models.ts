import { homedir, totalmem } from 'node:os';
import { join } from 'node:path';
import { CATALOGUE, catalogueItem, type CatalogueItem } from '../../shared/catalogue.js';
import type { ImportPlan, WeightDtype } from '../../shared/dtypes.js';
import type { ModelSummary } from '../../shared/ipc.js';
import type { PackVerification } from '../../shared/ipc-features.js';
import type { Progress } from '../../shared/progress.js';
import { CodedError } from '../../shared/result.js';
import { chooseFiles, downloadCheckpoint, HF_ENDPOINT, listRepo } from './download.js';

/** What to download: a repo's checkpoint files (or the named ones), imported at `dtype` (this machine's recommendation when absent). */
export interface DownloadRequest {
  repoId: string;
  files?: string[];
  dtype?: WeightDtype;
}

/** How long the catalogue waits for the hub's listings before it shows estimates instead. */
const LISTING_TIMEOUT_MS = 5000;

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
    private readonly machineMemoryBytes = totalmem(),
  ) {}

  import(path: string, dtype?: WeightDtype): Promise<ModelSummary> {
    return this.exclusive((signal) => this.installer.import(path, dtype, this.emit, signal));
  }

  /** Downloads (checked and resumable), then imports at the requested precision or the one the import plan recommends. */
  download({ repoId, files, dtype }: DownloadRequest): Promise<ModelSummary> {
    return this.exclusive(async (signal) => {
      const dir = await downloadCheckpoint(
        repoId,
        join(this.downloadsDir, repoId.replace('/', '--')),
        this.emit,
        signal,
        this.endpoint,
        files,
      );
      return this.installer.import(dir, dtype ?? (await this.installer.plan(dir)).recommended, this.emit, signal);
    });
  }

  /** Each entry's listed download, once the hub has answered for it (asked again only where it has not). */
  private readonly listed = new Map<string, { bytes: number; files: number }>();

  /** The catalogue with the hub's listed download sizes where it answers in time, estimates where not. */
  async catalogue(): Promise<CatalogueItem[]> {
    const signal = AbortSignal.timeout(LISTING_TIMEOUT_MS);
    return Promise.all(
      CATALOGUE.map(async (entry) => {
        if (!this.listed.has(entry.id)) {
          await listRepo(entry.repoId, this.endpoint, signal).then(
            (files) => {
              const chosen = chooseFiles(entry.repoId, files, entry.files);
              this.listed.set(entry.id, { bytes: chosen.reduce((sum, f) => sum + (f.size ?? 0), 0), files: chosen.length });
            },
            () => undefined,
          );
        }
        return catalogueItem(entry, this.machineMemoryBytes, this.listed.get(entry.id));
      }),
    );
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
