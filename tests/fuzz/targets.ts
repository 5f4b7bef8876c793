import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import sharp from 'sharp';
import { parseClipParams, preprocessClip } from '../../src/engine/image/preprocess.js';
import { ImageError } from '../../src/engine/image/validate.js';
import { readSafetensorsHeader, SafetensorsError } from '../../src/engine/io/safetensors.js';
import { GgufError, readGgufHeader } from '../../src/engine/io/gguf.js';
import { CheckpointError } from '../../src/engine/pack/checkpoint.js';
import { readGgufCheckpoint } from '../../src/engine/pack/gguf-checkpoint.js';
import { ggufBytes, type TestHeader, type TestValue } from '../helpers/gguf-bytes.js';
import { ConfigError, parseLlavaConfig } from '../../src/engine/model/config.js';
import { readTrace } from '../../src/shared/trace-files.js';
import { TextTokenizer, TokenizerError } from '../../src/engine/text/tokenizer.js';
import { ConversationStore, StorageError } from '../../src/main/storage/index.js';
import { buildSyntheticTokenizer } from '../../src/engine/checkpoint/synthetic-tokenizer.js';

/**
 * Parsers fed hostile input: each target turns a generated value into a call that must either
 * succeed or fail with its own error type and a readable message, within a time limit. The
 * property tests run a few hundred cases; `npm run fuzz -- <target> --cases N` runs many more.
 */

export interface FuzzTarget<T = unknown> {
  name: string;
  input: fc.Arbitrary<T>;
  /** Resolves when the input was accepted; throws the target's own error when it was refused. */
  run(input: T): Promise<unknown>;
  /** The refusals this target may give. */
  expected: (e: unknown) => boolean;
}

/** Raw JavaScript or zod text a user must never see. */
const RAW = /Cannot read propert|is not a function|is not iterable|undefined \(reading|\[object Object\]|"code":\s*"|Maximum call stack/;

/** The failure a case shows, or null when the case passed (accepted, or refused readably). */
export async function check<T>(target: FuzzTarget<T>, input: T): Promise<string | null> {
  try {
    await target.run(input);
    return null;
  } catch (e) {
    if (!target.expected(e)) return `unexpected ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`;
    if (RAW.test((e as Error).message)) return `unreadable message: ${(e as Error).message}`;
    return null;
  }
}

const scratch = mkdtempSync(join(tmpdir(), 'tp-fuzz-'));
let counter = 0;
const scratchFile = (name: string) => join(scratch, `${counter++}-${name}`);

/** A JSON document with one value somewhere in it replaced (or removed): inputs near the valid ones. */
function mutated(base: unknown): fc.Arbitrary<unknown> {
  return fc
    .tuple(fc.array(fc.nat(), { maxLength: 5 }), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)))
    .map(([path, value]) => {
      const copy = structuredClone(base) as Record<string, unknown>;
      let node: Record<string, unknown> = copy;
      for (const [i, step] of path.entries()) {
        const keys = Object.keys(node);
        if (keys.length === 0) break;
        const key = keys[step % keys.length];
        const child = node[key];
        if (i === path.length - 1 || typeof child !== 'object' || child === null) {
          if (value === undefined) delete node[key];
          else node[key] = value;
          return copy;
        }
        node = child as Record<string, unknown>;
      }
      return copy;
    });
}

const DTYPES = ['F32', 'F16', 'BF16', 'I64', 'U8', 'BOOL', 'constructor', 'toString', '__proto__', 'f32', ''];
const safetensorsHeader = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc
    .array(
      fc.record({
        name: fc.oneof(fc.string(), fc.constantFrom('__metadata__', 'constructor', 'w')),
        dtype: fc.constantFrom(...DTYPES),
        shape: fc.array(fc.integer({ min: -2, max: 6 }), { maxLength: 3 }),
        offsets: fc.array(fc.integer({ min: -1, max: 64 }), { maxLength: 3 }),
      }),
      { maxLength: 4 },
    )
    .map((ts) => JSON.stringify(Object.fromEntries(ts.map((t) => [t.name, { dtype: t.dtype, shape: t.shape, data_offsets: t.offsets }])))),
);

export const safetensorsTarget: FuzzTarget<{ header: string; data: Uint8Array; lengthDelta: number }> = {
  name: 'safetensors',
  input: fc.record({
    header: safetensorsHeader,
    data: fc.uint8Array({ maxLength: 64 }),
    lengthDelta: fc.constantFrom(0, 0, 0, 1, -1, 1e6),
  }),
  run: async ({ header, data, lengthDelta }) => {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Math.max(0, Buffer.byteLength(header) + lengthDelta)));
    const path = scratchFile('x.safetensors');
    writeFileSync(path, Buffer.concat([len, Buffer.from(header), data]));
    return readSafetensorsHeader(path);
  },
  expected: (e) => e instanceof SafetensorsError,
};

/**
 * GGUF: headers near a valid llama file (metadata of every kind, tensors of supported and unknown types, lying
 * counts, lengths and offsets), then cut or with a byte flipped; whatever the header reader accepts also goes
 * through the importer's validation (config, tokenizer, template).
 */
const ggufValue = fc.oneof(
  fc.nat({ max: 600 }).map((u32) => ({ u32 })),
  fc.float({ noNaN: true }).map((f32) => ({ f32 })),
  fc.string({ maxLength: 12 }).map((str) => ({ str })),
  fc.boolean().map((bool) => ({ bool })),
  fc.array(fc.string({ maxLength: 6 }), { maxLength: 6 }).map((strs) => ({ strs })),
);
const GGUF_KEYS = [
  'general.architecture',
  'llama.embedding_length',
  'llama.block_count',
  'llama.attention.head_count',
  'llama.feed_forward_length',
  'llama.attention.layer_norm_rms_epsilon',
  'tokenizer.ggml.model',
  'tokenizer.ggml.tokens',
  'tokenizer.ggml.merges',
  'tokenizer.ggml.eos_token_id',
  'tokenizer.chat_template',
  'general.alignment',
];
const VALID_GGUF_KV: [string, TestValue][] = [
  ['general.architecture', { str: 'llama' }],
  ['llama.embedding_length', { u32: 32 }],
  ['llama.block_count', { u32: 1 }],
  ['llama.attention.head_count', { u32: 2 }],
  ['llama.feed_forward_length', { u32: 32 }],
  ['llama.attention.layer_norm_rms_epsilon', { f32: 1e-5 }],
  ['tokenizer.ggml.model', { str: 'gpt2' }],
  ['tokenizer.ggml.tokens', { strs: ['a', 'b', 'ab', '<|end|>'] }],
  ['tokenizer.ggml.merges', { strs: ['a b'] }],
  ['tokenizer.ggml.eos_token_id', { u32: 3 }],
];

export const ggufTarget: FuzzTarget<{ header: TestHeader; cut: number; flip: number }> = {
  name: 'gguf',
  input: fc.record({
    header: fc.record({
      version: fc.constantFrom(3, 3, 2, 1, 4),
      kv: fc.oneof(
        fc.constant(VALID_GGUF_KV),
        fc.array(fc.tuple(fc.constantFrom(...GGUF_KEYS), ggufValue), { maxLength: 10 }),
        fc.tuple(fc.nat({ max: VALID_GGUF_KV.length - 1 }), fc.constantFrom(...GGUF_KEYS), ggufValue).map(([at, key, value]) => {
          const kv = [...VALID_GGUF_KV];
          kv[at] = [key, value];
          return kv;
        }),
      ),
      tensors: fc.array(
        fc.record({
          name: fc.constantFrom('token_embd.weight', 'blk.0.attn_q.weight', 'output_norm.weight', 'w'),
          dims: fc.array(fc.bigInt({ min: 0n, max: 1n << 41n }), { minLength: 1, maxLength: 5 }),
          type: fc.constantFrom(0, 1, 2, 3, 8, 12, 14, 16, 30, 99),
          offset: fc.bigInt({ min: 0n, max: 1n << 20n }),
        }),
        { maxLength: 4 },
      ),
      data: fc.uint8Array({ maxLength: 256 }),
      stringLengthLie: fc.option(fc.bigInt({ min: 0n, max: 1n << 40n }), { nil: undefined }),
    }),
    cut: fc.constantFrom(0, 0, 0, 1, 17, 100),
    flip: fc.constantFrom(-1, -1, -1, 5, 9, 30, 60),
  }),
  run: async ({ header, cut, flip }) => {
    const bytes = ggufBytes(header);
    const cutBytes = bytes.subarray(0, Math.max(0, bytes.length - cut));
    if (flip >= 0 && flip < cutBytes.length) cutBytes[flip] ^= 0x5a;
    const path = scratchFile('x.gguf');
    writeFileSync(path, cutBytes);
    await readGgufHeader(path);
    return readGgufCheckpoint(path);
  },
  expected: (e) => e instanceof GgufError || e instanceof CheckpointError,
};

const VALID_CONFIG = {
  model_type: 'llava',
  architectures: ['LlavaForConditionalGeneration'],
  image_token_index: 32000,
  vision_feature_layer: -2,
  vision_feature_select_strategy: 'default',
  projector_hidden_act: 'gelu',
  text_config: {
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    vocab_size: 32064,
    rms_norm_eps: 1e-5,
    max_position_embeddings: 4096,
  },
  vision_config: {
    model_type: 'clip_vision_model',
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    image_size: 28,
    patch_size: 7,
    hidden_act: 'quick_gelu',
    layer_norm_eps: 1e-5,
  },
};

export const configTarget: FuzzTarget<unknown> = {
  name: 'config',
  input: fc.oneof(mutated(VALID_CONFIG), mutated(VALID_CONFIG), fc.jsonValue({ maxDepth: 3 })),
  run: async (json) => parseLlavaConfig(JSON.stringify(json) ?? 'undefined'),
  expected: (e) => e instanceof ConfigError,
};

const imageBases = (async () => {
  const small = () => sharp({ create: { width: 12, height: 9, channels: 3, background: '#4a8' } });
  return Promise.all([small().png().toBuffer(), small().jpeg().toBuffer(), small().gif().toBuffer(), small().webp().toBuffer()]);
})();
const smallClip = parseClipParams({ size: { shortest_edge: 28 }, crop_size: 28 });
/** Sizes an image header may claim: the audit's wide strips, the edges of the limits, nothing and too much. */
const CLAIMED_SIZE = fc.oneof(
  fc.constantFrom<[number, number]>([20000, 4], [65500, 1], [1, 65535], [0, 0], [65535, 65535], [8000, 8000], [8001, 8000], [320, 10]),
  fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 })),
);

/** Rewrites the width and height a PNG (IHDR, with its CRC) or baseline/progressive JPEG (SOF) header claims. */
function claimSize(bytes: Buffer, [width, height]: [number, number]): void {
  if (bytes.readUInt32BE(0) === 0x89504e47) {
    bytes.writeUInt32BE(width, 16);
    bytes.writeUInt32BE(height, 20);
    bytes.writeUInt32BE(crc32(bytes.subarray(12, 29)), 29);
    return;
  }
  for (let i = 2; i + 9 < bytes.length; i++) {
    if (bytes[i] === 0xff && (bytes[i + 1] === 0xc0 || bytes[i + 1] === 0xc2)) {
      bytes.writeUInt16BE(Math.min(height, 65535), i + 5);
      bytes.writeUInt16BE(Math.min(width, 65535), i + 7);
      return;
    }
  }
}

export const imageTarget: FuzzTarget<{
  base: number;
  size: [number, number] | null;
  flips: [number, number][];
  cut: number;
  random: Uint8Array | null;
}> = {
  name: 'image',
  input: fc.record({
    base: fc.nat({ max: 3 }),
    size: fc.option(CLAIMED_SIZE, { freq: 2 }),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    cut: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }) }),
    random: fc.oneof({ weight: 7, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) }),
  }),
  run: async ({ base, size, flips, cut, random }) => {
    const bytes = random ? Buffer.from(random) : Buffer.from((await imageBases)[base]);
    if (size && !random) claimSize(bytes, size);
    for (const [at, value] of flips) if (bytes.length) bytes[at % bytes.length] = value;
    return preprocessClip(bytes.subarray(0, Math.ceil(bytes.length * (1 - cut))), smallClip);
  },
  expected: (e) => e instanceof ImageError,
};

const VALID_TRACE_HEAD = { version: 1, model: { id: 'x' }, layers: [], totals: {} };
export const traceTarget: FuzzTarget<unknown> = {
  name: 'trace',
  input: fc.oneof(
    mutated(VALID_TRACE_HEAD),
    fc.jsonValue({ maxDepth: 3 }),
    fc.string().map((s) => ({ text: s })),
  ),
  run: async (value) => readTrace((value as { text?: string })?.text ?? JSON.stringify(value) ?? ''),
  expected: (e) => e instanceof Error && /^(not a trace file|unsupported trace version|invalid trace)/.test(e.message),
};

const conversations = new ConversationStore(join(scratch, 'conversations'));
const VALID_CONVERSATION = {
  schemaVersion: 1,
  id: 'fuzz',
  title: 'Cats',
  createdAt: 1,
  updatedAt: 2,
  messages: [
    { id: 'u1', role: 'user', text: 'What?', images: ['a'.repeat(64)], createdAt: 1 },
    { id: 'a1', role: 'assistant', current: 0, versions: [{ id: 'v1', text: 'A cat', status: 'done', createdAt: 2 }] },
  ],
};
export const conversationTarget: FuzzTarget<unknown> = {
  name: 'conversation',
  input: fc.oneof(mutated(VALID_CONVERSATION), mutated(VALID_CONVERSATION), fc.jsonValue({ maxDepth: 3 })),
  run: async (json) => {
    await conversations.list(); // creates the folder
    writeFileSync(join(conversations.dir, 'fuzz.json'), JSON.stringify(json) ?? '');
    return conversations.get('fuzz');
  },
  expected: (e) => e instanceof StorageError,
};

const TOKENIZER = buildSyntheticTokenizer().json as Record<string, unknown>;
/** Split patterns that backtrack exponentially on text without a match (the audit's hang), and any string. */
const SPLIT_PATTERN = fc.oneof(fc.constantFrom('([^x]*)*x', '(a+)+$', '(\\w|\\w\\w)*!', '(.*)*\\d'), fc.string({ maxLength: 12 }));
const withSplit = SPLIT_PATTERN.map((pattern) => ({
  ...TOKENIZER,
  pre_tokenizer: {
    type: 'Sequence',
    pretokenizers: [{ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false }, TOKENIZER.pre_tokenizer],
  },
}));
/** Below the fuzz command's hang limit: a pattern that backtracks without end is a refusal, not a hang. */
const TOKENIZER_FUZZ_BUDGET_MS = 500;
export const tokenizerTarget: FuzzTarget<{ json: unknown; text: string }> = {
  name: 'tokenizer',
  input: fc.record({
    json: fc.oneof({ weight: 19, arbitrary: mutated(TOKENIZER) }, { weight: 1, arbitrary: withSplit }),
    text: fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('a'.repeat(40), 'word '.repeat(8))),
  }),
  run: async ({ json, text }) => {
    const tokenizer = TextTokenizer.fromJson(json as Record<string, unknown>);
    const budgetMs = TOKENIZER_FUZZ_BUDGET_MS;
    tokenizer.decode(tokenizer.encode(text, { budgetMs }), { budgetMs });
  },
  expected: (e) => e instanceof TokenizerError || (e as { code?: string })?.code === 'timeout',
};

// biome-ignore lint/suspicious/noExplicitAny: one list of targets whose inputs differ in type
export const targets: FuzzTarget<any>[] = [
  safetensorsTarget,
  ggufTarget,
  configTarget,
  imageTarget,
  traceTarget,
  conversationTarget,
  tokenizerTarget,
];
