import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Whether a folder holds a checkpoint to import: a Hugging Face folder (config.json) or a GGUF (pair). */
export function holdsCheckpoint(dir: string): boolean {
  return existsSync(join(dir, 'config.json')) || (existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.gguf')));
}
