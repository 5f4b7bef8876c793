import onnxProto from 'onnx-proto';
import { Tensor, type InferenceSession } from 'onnxruntime-node';
import { encodeHalf } from '../../engine/io/float16.js';
import type { SessionFactory } from '../../engine/runtime/providers.js';

const { onnx } = onnxProto;

/**
 * The machine's ONNX Runtime GEMM peak: one MatMul session with a constant weight (prepacked, as the
 * decoder's projections are), timed on the same provider and threads as the model it is compared with.
 */

/** An ONNX model computing `y = x · W` with x [m, k] and a seeded random constant W [k, n], fp32 or fp16 weights. */
export function gemmModel(m: number, k: number, n: number, weightType: 'float32' | 'float16' = 'float32'): Uint8Array {
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const tensorType = (dims: number[]) => ({ tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } });
  const fp16 = weightType === 'float16';
  const weight = onnx.TensorProto.create({
    name: 'w',
    dims: [k, n],
    dataType: fp16 ? onnx.TensorProto.DataType.FLOAT16 : FLOAT,
    rawData: randomWeights(k * n, fp16),
  });
  const nodes = fp16
    ? [
        onnx.NodeProto.create({
          opType: 'Cast',
          input: ['w'],
          output: ['w32'],
          attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }],
        }),
        onnx.NodeProto.create({ opType: 'MatMul', input: ['x', 'w32'], output: ['y'] }),
      ]
    : [onnx.NodeProto.create({ opType: 'MatMul', input: ['x', 'w'], output: ['y'] })];
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'gemm',
      node: nodes,
      initializer: [weight],
      input: [{ name: 'x', type: tensorType([m, k]) }],
      output: [{ name: 'y', type: tensorType([m, n]) }],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Small uniform weights in [-0.05, 0.05) from a fixed LCG, as little-endian fp32 or fp16 bytes. */
function randomWeights(count: number, fp16: boolean): Uint8Array {
  const values = new Float32Array(count);
  let state = 12345;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[i] = (state / 4294967296 - 0.5) * 0.1;
  }
  return new Uint8Array(fp16 ? encodeHalf(values).buffer : values.buffer);
}

export interface GemmPeak {
  m: number;
  k: number;
  n: number;
  /** Fastest of the timed runs, in seconds: a peak is what the machine can do, not its average under load. */
  seconds: number;
  /** 2·m·k·n / seconds / 1e9 */
  gflops: number;
}

/** Times `runs` MatMuls after a warm-up and reports the fastest. */
export async function measureGemmPeak(
  factory: SessionFactory,
  m: number,
  k: number,
  n: number,
  runs = 5,
  weightType: 'float32' | 'float16' = 'float32',
): Promise<GemmPeak> {
  const session: InferenceSession = await factory.create(gemmModel(m, k, n, weightType));
  try {
    const x = new Tensor('float32', new Float32Array(m * k).fill(0.01), [m, k]);
    await session.run({ x });
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const start = performance.now();
      const { y } = await session.run({ x });
      await y.getData();
      times.push((performance.now() - start) / 1000);
      y.dispose();
    }
    const seconds = Math.min(...times);
    return { m, k, n, seconds, gflops: (2 * m * k * n) / seconds / 1e9 };
  } finally {
    await session.release();
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
