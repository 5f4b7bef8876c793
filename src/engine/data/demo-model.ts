import { fileURLToPath } from 'node:url';
import { holdsCheckpoint } from '../pack/checkpoint-folder.js';

/**
 * The embedded demo model: a GGUF pair in resources/ (SmolLM2-135M-Instruct and an mmproj whose CLIP tower and
 * projector tools/demo-model/train.sh trains on the synthetic VQA data, on a CPU). `--model demo` resolves here.
 */
export const DEMO_MODEL_NAME = 'demo';
export const DEMO_MODEL_DIR = fileURLToPath(new URL('../../../resources/demo-model', import.meta.url));

export class DemoModelMissingError extends Error {}

/** The demo checkpoint's folder, or an error that says how to make it. */
export function demoModelDir(dir = DEMO_MODEL_DIR): string {
  if (holdsCheckpoint(dir)) return dir;
  throw new DemoModelMissingError(
    `the demo model is not trained yet: ${dir} has no checkpoint.\n` +
      'Train it with `bash tools/demo-model/train.sh` (about six hours on a 2-core CPU, resumable; see tools/demo-model/README.md).\n' +
      'Meanwhile pass --model <model pack name | Hugging Face LLaVA checkpoint folder>.',
  );
}
