// Child process for the make-checkpoint memory test: makes one checkpoint and prints how much its peak
// resident memory grew while doing so (maxRSS only ever rises, so the difference is the writer's own peak).
import { makeSyntheticCheckpoint, type SyntheticCheckpointOptions } from '../../src/engine/checkpoint/synthetic.js';

const [out, optionsJson] = process.argv.slice(2);
const before = process.resourceUsage().maxRSS * 1024;
await makeSyntheticCheckpoint(out, JSON.parse(optionsJson) as SyntheticCheckpointOptions);
const after = process.resourceUsage().maxRSS * 1024;
console.log(JSON.stringify({ before, after }));
