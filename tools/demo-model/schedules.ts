// Writes tools/demo-model/schedules.json: the TransPrune presets resolved for each decoder depth by
// the app's own depth scaling (src/shared/pruning.ts), so make_fixtures.py on the GPU machine runs
// exactly the schedules the engine runs, without a second implementation of the scaling.
//   npx tsx tools/demo-model/schedules.ts
import { writeFileSync } from 'node:fs';
import { PRESET_NAMES, PRESET_SCHEDULES, scaleSchedule } from '../../src/shared/pruning.js';

const DEPTHS = [4, 6, 8, 12, 16, 24, 28, 30, 32, 36, 40]; // 30: SmolLM2 (the demo); 28, 36: Qwen2.5-VL 7B, 3B

const table = Object.fromEntries(
  DEPTHS.map((depth) => [
    depth,
    Object.fromEntries(PRESET_NAMES.map((preset) => [preset, scaleSchedule(PRESET_SCHEDULES[preset], depth)])),
  ]),
);
const file = new URL('./schedules.json', import.meta.url);
writeFileSync(file, `${JSON.stringify(table, null, 1)}\n`);
console.log(`wrote ${file.pathname} for depths ${DEPTHS.join(', ')}`);
