// tokenizer.json and tokenizer_config.json from a GGUF's tokenizer metadata, for @huggingface/tokenizers.
// A GGUF carries the vocabulary, merges, token types and special ids under llama.cpp's keys
// (tokenizer.ggml.*); the pre-tokenizer is only named (tokenizer.ggml.pre), so its splitting rule is
// taken from llama.cpp's src/llama-vocab.cpp for that name. Supported: `gpt2` (byte-level BPE with merges)
// and `llama` (SentencePiece BPE with byte fallback).

import { GgufError, type GgufMetadata } from '../io/gguf.js';

type Json = Record<string, unknown>;

export interface GgufTokenizerFiles {
  tokenizerJson: Json;
  tokenizerConfig: Json;
  /** Id of the added `<image>` placeholder, when one was asked for (one past the model's vocabulary). */
  imageTokenId: number | null;
}

/** llama.cpp's token types (llama_token_type). */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** GPT-2's bytes_to_unicode: the printable stand-in for every byte, so byte-level tokens are plain strings. */
const BYTE_TO_UNICODE: string[] = (() => {
  const printable = [...range(0x21, 0x7e), ...range(0xa1, 0xac), ...range(0xae, 0xff)];
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  return table;
})();
const BYTE_ALPHABET = new Set(BYTE_TO_UNICODE);

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** GPT-2's own split (the default when a file names no other), and llama-3's, as in llama-vocab.cpp. */
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
const split = (pattern: string) => ({ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false });

/** The pre-tokenizer llama.cpp applies for each `tokenizer.ggml.pre` name this engine knows. */
function byteLevelPreTokenizer(pre: string | null): Json {
  switch (pre) {
    case null:
    case 'default':
    case 'gpt-2':
    case 'gpt2':
      return byteLevel(true);
    // SmolLM: every digit alone, then GPT-2's split (llama-vocab.cpp LLAMA_VOCAB_PRE_TYPE_SMOLLM; SmolLM2's own tokenizer.json).
    case 'smollm':
      return { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] };
    case 'llama3':
    case 'llama-v3':
    case 'llama-bpe':
    case 'smaug-bpe':
    case 'falcon3':
      return { type: 'Sequence', pretokenizers: [split(LLAMA3_SPLIT), byteLevel(false)] };
    case 'qwen2':
    case 'deepseek-r1-qwen':
      return { type: 'Sequence', pretokenizers: [split(QWEN2_SPLIT), byteLevel(false)] };
    default:
      throw new GgufError(`tokenizer.ggml.pre "${pre}" is not supported (supported: default, gpt2, smollm, llama3/llama-bpe, qwen2)`);
  }
}

/** Builds the tokenizer files; `withImageToken` adds `<image>` as a special token after the vocabulary. */
export function ggufTokenizerFiles(meta: GgufMetadata, withImageToken: boolean): GgufTokenizerFiles {
  const model = meta.string('tokenizer.ggml.model');
  const tokens = meta.strings('tokenizer.ggml.tokens');
  if (!tokens?.length) throw new GgufError('the file has no tokenizer.ggml.tokens: a GGUF without its vocabulary cannot be used');
  const types = meta.numbers('tokenizer.ggml.token_type') ?? tokens.map(() => TOKEN_TYPE.normal);
  if (types.length !== tokens.length) throw new GgufError('tokenizer.ggml.token_type and tokenizer.ggml.tokens differ in length');

  let body: Json;
  if (model === 'gpt2') body = byteLevelBody(meta, tokens);
  else if (model === 'llama') body = sentencePieceBody(meta, tokens, types);
  else throw new GgufError(`tokenizer.ggml.model "${model}" is not supported (supported: gpt2, llama)`);

  const vocabTokens = body.vocabTokens as string[];
  delete body.vocabTokens;
  const added: Json[] = [];
  tokens.forEach((token, id) => {
    const type = types[id];
    // A control token spelled outside the byte alphabet is a llama.cpp mislabel: transformers leaves it out too.
    if ((type === TOKEN_TYPE.control || type === TOKEN_TYPE.userDefined) && vocabTokens[id] === token)
      added.push(addedToken(id, token, type === TOKEN_TYPE.control));
  });
  // A vocabulary that has <image> (llava-hf's) keeps it; otherwise it goes after the vocabulary (liuhaotian's 32000).
  const own = tokens.indexOf('<image>');
  const imageTokenId = withImageToken ? (own >= 0 ? own : tokens.length) : null;
  if (imageTokenId !== null && own < 0) added.push(addedToken(imageTokenId, '<image>', true));
  if (imageTokenId !== null && own >= 0 && types[own] !== TOKEN_TYPE.control) added.push(addedToken(own, '<image>', true));

  const special = (key: string) => {
    const id = meta.number(`tokenizer.ggml.${key}`, null);
    if (id === null) return null;
    if (!Number.isInteger(id) || id < 0 || id >= tokens.length) throw new GgufError(`tokenizer.ggml.${key} ${id} is not a token id`);
    return vocabTokens[id];
  };
  const bos = special('bos_token_id');
  const addBos = meta.boolean('tokenizer.ggml.add_bos_token', model === 'llama') ?? false;
  const addEos = meta.boolean('tokenizer.ggml.add_eos_token', false) ?? false;
  const eos = special('eos_token_id');
  const post = postProcessor(model, addBos ? bos : null, addEos ? eos : null, vocabTokens);
  const tokenizerJson: Json = { version: '1.0', truncation: null, padding: null, added_tokens: added, ...body, post_processor: post };
  const tokenizerConfig: Json = {
    bos_token: bos,
    eos_token: eos,
    unk_token: special('unknown_token_id'),
    pad_token: special('padding_token_id'),
    add_bos_token: addBos,
    add_eos_token: addEos,
    ...(meta.has('tokenizer.chat_template') ? { chat_template: meta.string('tokenizer.chat_template') } : {}),
  };
  if (imageTokenId !== null) tokenizerConfig.image_token = '<image>';
  return { tokenizerJson, tokenizerConfig, imageTokenId };
}

function addedToken(id: number, content: string, special: boolean): Json {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special };
}

/** gpt2: the vocabulary in GPT-2's byte alphabet (a token spelled otherwise is re-spelled from its UTF-8 bytes, as transformers does). */
function byteLevelBody(meta: GgufMetadata, tokens: string[]): Json {
  const merges = meta.strings('tokenizer.ggml.merges');
  if (!merges) throw new GgufError('a gpt2 tokenizer needs tokenizer.ggml.merges, and the file has none');
  const vocabTokens = tokens.map((t) =>
    [...t].every((c) => BYTE_ALPHABET.has(c)) ? t : [...Buffer.from(t, 'utf8')].map((b) => BYTE_TO_UNICODE[b]).join(''),
  );
  return {
    vocabTokens,
    normalizer: null,
    pre_tokenizer: byteLevelPreTokenizer(meta.string('tokenizer.ggml.pre', null)),
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: vocabObject(vocabTokens),
      merges: merges.map((m) => splitMerge(m)),
    },
  };
}

/**
 * llama: SentencePiece BPE as transformers' LlamaTokenizer builds it (Metaspace with a prepended ▁, byte
 * fallback through the <0xNN> tokens), merges from the file or, where it has none, recovered from the scores.
 */
function sentencePieceBody(meta: GgufMetadata, tokens: string[], types: number[]): Json {
  const scores = meta.numbers('tokenizer.ggml.scores');
  const merges = meta.strings('tokenizer.ggml.merges')?.map(splitMerge) ?? mergesFromScores(tokens, types, scores);
  const unk = meta.number('tokenizer.ggml.unknown_token_id', 0) ?? 0;
  const prefixSpace = meta.boolean('tokenizer.ggml.add_space_prefix', true) ?? true;
  return {
    vocabTokens: tokens,
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: prefixSpace ? 'first' : 'never', split: false },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(prefixSpace ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: tokens[unk] ?? null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: vocabObject(tokens),
      merges,
    },
  };
}

/** Merges implied by a scored vocabulary: every split of a token into two known tokens, best-scored token first. */
function mergesFromScores(tokens: string[], types: number[], scores: number[] | null): [string, string][] {
  if (!scores || scores.length !== tokens.length) throw new GgufError('a llama tokenizer without merges needs tokenizer.ggml.scores');
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const merges: { pair: [string, string]; score: number; right: number }[] = [];
  tokens.forEach((token, id) => {
    if (types[id] !== TOKEN_TYPE.normal) return;
    const chars = [...token];
    for (let cut = 1; cut < chars.length; cut++) {
      const left = chars.slice(0, cut).join('');
      const right = chars.slice(cut).join('');
      if (ids.has(left) && ids.has(right)) merges.push({ pair: [left, right], score: scores[id], right: ids.get(right)! });
    }
  });
  merges.sort((a, b) => b.score - a.score || a.right - b.right);
  return merges.map((m) => m.pair);
}

function splitMerge(merge: string): [string, string] {
  const at = merge.indexOf(' ', 1);
  if (at < 0) throw new GgufError(`tokenizer.ggml.merges entry "${merge}" is not two tokens separated by a space`);
  return [merge.slice(0, at), merge.slice(at + 1)];
}

function vocabObject(tokens: string[]): Record<string, number> {
  const vocab: Record<string, number> = Object.create(null);
  tokens.forEach((t, i) => {
    if (!(t in vocab)) vocab[t] = i;
  });
  return vocab;
}

/** BOS/EOS as llama.cpp adds them (tokenizer.ggml.add_bos_token / add_eos_token), around the byte-level offsets fix. */
function postProcessor(model: string, bos: string | null, eos: string | null, tokens: string[]): Json | null {
  const template = bos !== null || eos !== null ? templateProcessing(bos, eos, tokens) : null;
  const offsets = model === 'gpt2' ? { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true } : null;
  if (template && offsets) return { type: 'Sequence', processors: [offsets, template] };
  return template ?? offsets;
}

function templateProcessing(bos: string | null, eos: string | null, tokens: string[]): Json {
  const piece = (id: string) => ({ SpecialToken: { id, type_id: 0 } });
  const seq = (s: 'A' | 'B') => ({ Sequence: { id: s, type_id: 0 } });
  const wrap = (s: 'A' | 'B') => [...(bos ? [piece(bos)] : []), seq(s), ...(eos ? [piece(eos)] : [])];
  const special: Json = {};
  for (const t of [bos, eos]) if (t) special[t] = { id: t, ids: [tokens.indexOf(t)], tokens: [t] };
  return { type: 'TemplateProcessing', single: wrap('A'), pair: [...wrap('A'), ...wrap('B')], special_tokens: special };
}
