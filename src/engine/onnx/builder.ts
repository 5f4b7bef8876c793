// A small graph-builder over onnx-proto: every method adds nodes and returns the name of the value
// it produces, so graph code reads like the forward pass it encodes (see graphs/*.ts).

import onnxProto, { type onnx as Onnx } from 'onnx-proto';
import type { ExternalRef, StoredType, WeightFile } from './weight-file.js';

const { onnx } = onnxProto;

export const OPSET = 18; // Reduce* take axes as an input from 18 on, the same for every reduction
const IR_VERSION = 8;

export type Dim = number | string;
export type ElemType = 'float' | 'float16' | 'uint8' | 'int64' | 'bool';
const ELEM: Record<ElemType, number> = { float: 1, uint8: 2, float16: 10, int64: 7, bool: 9 };
const CONTRIB_DOMAIN = 'com.microsoft';

/** Attribute values: integers become INT, other numbers FLOAT; wrap with `float()` to force FLOAT. */
export type Attr = number | number[] | string | { float: number };
export const float = (value: number): { float: number } => ({ float: value });

/** Builds one If branch's value in the branch's graph (async when it writes weights). */
type Branch = (g: Graph) => string | Promise<string>;

/** What a graph shares with the branches of its If nodes: initializers, constants and unique value names. */
interface Scope {
  initializers: Onnx.ITensorProto[];
  constants: Map<string, string>;
  counter: number;
  usesContribOps: boolean;
}

export class Graph {
  private readonly nodes: Onnx.INodeProto[] = [];
  private readonly inputs: Onnx.IValueInfoProto[] = [];
  private readonly outputs: Onnx.IValueInfoProto[] = [];

  /** `weights` receives this graph's initializers and decides their types (see WeightFile). */
  constructor(
    readonly name: string,
    private readonly weights?: WeightFile,
    private readonly scope: Scope = { initializers: [], constants: new Map(), counter: 0, usesContribOps: false },
  ) {}

  /** Bits of MatMulNBits weights for linear layers; 0 = plain float MatMul. */
  get quantBits(): 0 | 4 | 8 {
    return this.weights?.quantBits ?? 0;
  }

  /** Quantized linears take int8 inputs too (see WeightFile). */
  get int8Activations(): boolean {
    return this.weights?.options.int8Activations ?? false;
  }

  input(name: string, type: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /**
   * Declares a graph output. A value a node of this graph produces is renamed to `name` (its consumers
   * follow), so the output is that node's own buffer; an Identity would copy it on every run (a KV cache
   * each decode step). Graph inputs, initializers and values already output get an Identity.
   */
  output(name: string, value: string, type: ElemType, dims: Dim[]): void {
    const producer = this.nodes.find((n) => n.output?.includes(value));
    const alreadyOutput = this.outputs.some((o) => o.name === value);
    if (producer && !alreadyOutput) this.rename(value, name);
    else this.op('Identity', [value], {}, name);
    this.outputs.push(valueInfo(name, type, dims));
  }

  private rename(from: string, to: string): void {
    renameIn(this.nodes, from, to);
  }

  /** Adds one node with a single output and returns that output's name. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, output = this.fresh(opType)): string {
    this.nodes.push({
      opType,
      input: inputs,
      output: [output],
      name: output,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  /** A com.microsoft contrib op (documented where used), e.g. MatMulNBits. */
  contribOp(opType: string, inputs: string[], attrs: Record<string, Attr>): string {
    this.scope.usesContribOps = true;
    const output = this.fresh(opType);
    this.nodes.push({
      opType,
      domain: CONTRIB_DOMAIN,
      input: inputs,
      output: [output],
      name: output,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  /**
   * ONNX If: the value `then` builds when `cond` (bool scalar) holds, else the one `otherwise` builds. Each
   * branch is a subgraph that reads this graph's values and weights, and only the chosen one runs.
   */
  async ifElse(cond: string, type: ElemType, then: Branch, otherwise: Branch): Promise<string> {
    const output = this.fresh('If');
    const branch = async (label: string, build: Branch): Promise<Onnx.IGraphProto> => {
      const sub = new Graph(`${output}_${label}`, this.weights, this.scope);
      const built = await build(sub);
      // A branch's output must be a value of its own: one from outside gets an Identity.
      const value = sub.nodes.some((n) => n.output?.includes(built)) ? built : sub.op('Identity', [built]);
      return { name: sub.name, node: sub.nodes, output: [{ name: value, type: { tensorType: { elemType: ELEM[type] } } }] };
    };
    const T = onnx.AttributeProto.AttributeType;
    const attribute = [
      { name: 'then_branch', type: T.GRAPH, g: await branch('then', then) },
      { name: 'else_branch', type: T.GRAPH, g: await branch('else', otherwise) },
    ];
    this.nodes.push({ opType: 'If', input: [cond], output: [output], name: output, attribute });
    return output;
  }

  /** Adds one node with several outputs. */
  opN(opType: string, inputs: string[], count: number, attrs: Record<string, Attr> = {}): string[] {
    const outputs = Array.from({ length: count }, () => this.fresh(opType));
    this.nodes.push({
      opType,
      input: inputs,
      output: outputs,
      name: outputs[0],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** A small inline constant (shape values, scalars), deduplicated. */
  constant(type: 'float' | 'int64', values: readonly number[], dims: number[] = [values.length]): string {
    const key = `${type}:${dims.join('x')}:${values.join(',')}`;
    const known = this.scope.constants.get(key);
    if (known) return known;
    const name = this.fresh(`const_${type}`);
    const typed = type === 'float' ? Float32Array.from(values) : BigInt64Array.from(values, (v) => BigInt(v));
    this.scope.initializers.push({ name, dataType: ELEM[type], dims, rawData: new Uint8Array(typed.buffer) });
    this.scope.constants.set(key, name);
    return name;
  }

  scalar(value: number): string {
    return this.constant('float', [value], []);
  }

  ints(...values: number[]): string {
    return this.constant('int64', values);
  }

  /** A weight stored in the external file, as float32 (Cast after the load when stored fp16). */
  async weight(key: string, load: () => Promise<{ data: Float32Array; dims: number[] }>): Promise<string> {
    return this.toFloat(await this.rawWeight(key, load));
  }

  /** A weight in its stored dtype: for ops that should run before the cast (Gather on an fp16 table). */
  async rawWeight(key: string, load: () => Promise<{ data: Float32Array; dims: number[] }>): Promise<string> {
    return this.external(key, (file) => file.tensor(key, load));
  }

  /** An already-encoded tensor (quantized codes, scales), as stored. */
  encodedWeight(key: string, encode: () => Promise<{ bytes: Uint8Array; type: StoredType; dims: number[] }>): Promise<string> {
    return this.external(key, (file) => file.stored(key, encode));
  }

  private async external(key: string, write: (file: WeightFile) => Promise<ExternalRef>): Promise<string> {
    if (!this.weights) throw new Error(`graph ${this.name} has no weight file for "${key}"`);
    const ref = await write(this.weights);
    const name = `w:${key}`;
    const { initializers } = this.scope;
    if (!initializers.some((t) => t.name === name)) initializers.push(externalTensor(name, ref));
    return name;
  }

  cast(x: string, to: ElemType): string {
    return this.op('Cast', [x], { to: ELEM[to] });
  }

  /** Casts a stored-dtype value to float32; identity for fp32 packs. */
  toFloat(value: string): string {
    return this.weights?.floatType === 'float16' ? this.cast(value, 'float') : value;
  }

  // Shorthands for the ops every graph uses.
  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  div(a: string, b: string): string {
    return this.op('Div', [a, b]);
  }
  matmul(a: string, b: string): string {
    return this.op('MatMul', [a, b]);
  }
  reshape(x: string, shape: number[]): string {
    return this.op('Reshape', [x, this.ints(...shape)]);
  }
  transpose(x: string, perm: number[]): string {
    return this.op('Transpose', [x], { perm });
  }
  unsqueeze(x: string, axes: number[]): string {
    return this.op('Unsqueeze', [x, this.ints(...axes)]);
  }
  concat(values: string[], axis: number): string {
    return this.op('Concat', values, { axis });
  }
  reduce(op: 'ReduceMean' | 'ReduceSum' | 'ReduceSumSquare', x: string, axes: number[], keepdims: boolean): string {
    return this.op(op, [x, this.ints(...axes)], { keepdims: keepdims ? 1 : 0 });
  }
  /** Dimension `axis` of `x` as an int64 scalar. */
  dim(x: string, axis: number): string {
    return this.op('Squeeze', [this.op('Shape', [x], { start: axis, end: axis + 1 }), this.ints(0)]);
  }

  /** Serialises the model; initializers point into the weight file by offset. */
  toBytes(): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'transprune-studio',
      opsetImport: [{ domain: '', version: OPSET }, ...(this.scope.usesContribOps ? [{ domain: CONTRIB_DOMAIN, version: 1 }] : [])],
      graph: { name: this.name, node: this.nodes, initializer: this.scope.initializers, input: this.inputs, output: this.outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  private fresh(hint: string): string {
    return `${hint}_${this.scope.counter++}`;
  }
}

/** Renames a value in `nodes` and in the If branches among them, which may read it. */
function renameIn(nodes: Onnx.INodeProto[], from: string, to: string): void {
  for (const node of nodes) {
    node.output = node.output?.map((v) => (v === from ? to : v));
    node.input = node.input?.map((v) => (v === from ? to : v));
    for (const attr of node.attribute ?? []) if (attr.g?.node) renameIn(attr.g.node, from, to);
  }
}

function valueInfo(name: string, type: ElemType, dims: Dim[]): Onnx.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType: ELEM[type], shape: { dim } } } };
}

function externalTensor(name: string, ref: ExternalRef): Onnx.ITensorProto {
  return {
    name,
    dataType: ELEM[ref.type],
    dims: ref.dims,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: ref.location },
      { key: 'offset', value: String(ref.offset) },
      { key: 'length', value: String(ref.length) },
    ],
  };
}

function attribute(name: string, value: Attr): Onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if (typeof value === 'object') return { name, type: T.FLOAT, f: value.float };
  return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
}
