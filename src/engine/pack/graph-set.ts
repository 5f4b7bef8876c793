import type { WeightDtype } from '../onnx/weight-file.js';
import type { PackManifest } from './manifest.js';

/** What writing a pack's graphs leaves: the graph files by role and each weight file's sha256. */
export interface BuiltGraphs {
  graphs: PackManifest['graphs'];
  weightsSha256: Record<string, string>;
}

/** Everything a manifest holds besides what the checkpoint says. */
export type ManifestFields = BuiltGraphs & {
  id: string;
  name: string;
  dtype: WeightDtype;
  sourceSha: string;
  source: string;
  pruning?: Record<string, unknown>;
};
