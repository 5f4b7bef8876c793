// A separate process that imports one checkpoint: `tsx import-child.ts <checkpoint> <store>` (tests kill it or trace it).
import { importCheckpoint } from '../../src/engine/pack/import.js';

const [checkpoint, store] = process.argv.slice(2);
await importCheckpoint(checkpoint, store, { name: 'child' });
