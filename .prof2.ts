import * as ort from 'onnxruntime-node';
import { readFileSync, readdirSync } from 'node:fs';
const dir = '/work/main/.cache/bench/store/60ea50f36eb44a07';
const graph = process.argv[2];
const s = await ort.InferenceSession.create(`${dir}/${graph}`, { executionProviders: ['cpu'], intraOpNumThreads: 2, graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: '/tmp/prof/p', enableCpuMemArena: false, extra: { session: { intra_op: { allow_spinning: '0' } } } } as any);
const S = 610, D = 512;
const hidden = new ort.Tensor('float32', Float32Array.from({ length: S * D }, (_, i) => Math.sin(i)), [1, S, D]);
const pos = new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(i)), [1, S]);
const feeds: any = graph.startsWith('probe') ? { hidden, position_ids: pos, query_start: new ort.Tensor('int64', BigInt64Array.from([BigInt(S - 34)]), [1]) }
 : { hidden, position_ids: pos, past_key: new ort.Tensor('float32', new Float32Array(0), [1,4,0,128]), past_value: new ort.Tensor('float32', new Float32Array(0), [1,4,0,128]), past_length: new ort.Tensor('int64', BigInt64Array.from([0n]), []), known_key_proj: new ort.Tensor('float32', new Float32Array(0), [1,0,512]) };
for (let i = 0; i < 20; i++) await s.run(feeds);
const f = (s as any).endProfiling();
