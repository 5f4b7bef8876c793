import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AppSettings, DEFAULT_SETTINGS } from '../../shared/settings.js';
import { mkdirPrivate, writeFileAtomic } from './atomicFile.js';

/**
 * The remembered settings, one JSON file. A missing file means defaults; an unreadable one also
 * gives defaults but is left untouched until the user saves, so a bad edit by hand loses nothing.
 */
export class SettingsStore {
  /** Saves run one after another, so the last one asked for is the one left on disk. */
  private saving: Promise<unknown> = Promise.resolve();

  constructor(readonly file: string) {}

  async load(): Promise<AppSettings> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return DEFAULT_SETTINGS;
    }
    try {
      return AppSettings.parse(JSON.parse(text));
    } catch {
      return DEFAULT_SETTINGS;
    }
  }

  async save(settings: AppSettings): Promise<AppSettings> {
    const valid = AppSettings.parse(settings);
    const write = async () => {
      await mkdirPrivate(dirname(this.file));
      await writeFileAtomic(this.file, JSON.stringify(valid, null, 2));
      return valid;
    };
    const saved = this.saving.then(write, write);
    this.saving = saved.catch(() => undefined);
    return saved;
  }
}
