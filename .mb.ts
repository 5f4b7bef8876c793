// MatMulNBits decode microbenchmark: a chain of distinct matrices (more than the caches hold), M = 1.
import * as ort from 'onnxruntime-node';
import { writeFileSync } from 'node:fs';
import { Graph } from './src/engine/onnx/builder.js';
import { WeightFile } from './src/engine/onnx/weight-file.js';
const [bits, block, zp, acc, spin] = process.argv.slice(2).map(Number);
const K = 4096, N = 11008, PAIRS = 3;
const tag = `b${bits}-k${block}-zp${zp}-a${acc}`;
const file = new WeightFile(`/tmp/mb/${tag}.bin`, bits === 4 ? 'int4' : 'int8');
const g = new Graph('mb', file);
let x = g.input('x', 'float', [1, 1, K]);
let bytes = 0;
let seed = 1;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
for (let p = 0; p < 2 * PAIRS; p++) {
  const [k, n] = p % 2 ? [N, K] : [K, N];
  const blocks = Math.ceil(k / block);
  const codes = new Uint8Array(n * blocks * (block * bits) / 8); for (let i = 0; i < codes.length; i++) codes[i] = (rnd() * 256) | 0;
  const scales = new Float32Array(n * blocks).map(() => 1e-3 * (1 + rnd()));
  const c = await g.encodedWeight(`c${p}`, async () => ({ bytes: codes, type: 'uint8', dims: [n, blocks, (block * bits) / 8] }));
  const s = await g.encodedWeight(`s${p}`, async () => ({ bytes: new Uint8Array(scales.buffer), type: 'float', dims: [n * blocks] }));
  const inputs = [x, c, s];
  bytes += codes.length + scales.byteLength;
  if (zp) {
    const z = new Uint8Array(n * Math.ceil((blocks * bits) / 8)).fill(bits === 4 ? 0x88 : 128);
    inputs.push(await g.encodedWeight(`z${p}`, async () => ({ bytes: z, type: 'uint8', dims: [z.length] })));
    bytes += z.length;
  }
  const attrs: Record<string, number> = { K: k, N: n, bits, block_size: block };
  if (acc) attrs.accuracy_level = acc;
  x = g.contribOp('MatMulNBits', inputs, attrs);
}
g.output('y', x, 'float', [1, 1, K]);
writeFileSync(`/tmp/mb/${tag}.onnx`, g.toBytes());
file.close();
const s = await ort.InferenceSession.create(`/tmp/mb/${tag}.onnx`, { executionProviders: ['cpu'], intraOpNumThreads: 2, interOpNumThreads: 1, enableCpuMemArena: false, extra: { session: { intra_op: { allow_spinning: spin ? '1' : '0' } } } } as any);
const feed = { x: new ort.Tensor('float32', Float32Array.from({ length: K }, () => rnd() - 0.5), [1, 1, K]) };
const t: number[] = [];
for (let i = 0; i < 40; i++) { const a = performance.now(); await s.run(feed); t.push(performance.now() - a); }
t.sort((a, b) => a - b);
const med = t[20];
console.log(`${tag} spin${spin}: ${(bytes / 1e6).toFixed(0)} MB, best ${t[0].toFixed(2)} ms, median ${med.toFixed(2)} ms -> ${(bytes / med / 1e6).toFixed(1)} GB/s (median)`);
