import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The embedded demo model: a Hugging Face LLaVA folder in resources/, trained on this project's synthetic
 * VQA data by tools/demo-model (on a GPU machine). `--model demo` resolves here.
 */
export const DEMO_MODEL_NAME = 'demo';
export const DEMO_MODEL_DIR = fileURLToPath(new URL('../../../resources/demo-model', import.meta.url));

export class DemoModelMissingError extends Error {}

/** The demo checkpoint's folder, or an error that says how to make it. */
export function demoModelDir(dir = DEMO_MODEL_DIR): string {
  if (existsSync(join(dir, 'config.json'))) return dir;
  throw new DemoModelMissingError(
    `the demo model is not trained yet: ${dir} has no checkpoint.\n` +
      'It is trained on a GPU machine: see tools/demo-model/RUN.md (here `bash tools/demo-model/carry.sh`, then one device command).\n' +
      'Meanwhile pass --model <model pack name | Hugging Face LLaVA checkpoint folder>.',
  );
}
