import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { z } from 'zod';
import { describeIssues } from '../../shared/result.js';
import { withinBudget } from '../util/budget.js';

/**
 * The model's tokenizer: a thin wrapper over @huggingface/tokenizers loaded from a checkpoint's (or
 * model pack's) tokenizer.json + tokenizer_config.json. Streaming decode lives in
 * runtime/text-stream.ts, which re-decodes the whole answer through `decode` each step so byte-fallback
 * pieces and merges never surface half-done.
 */

export class TokenizerError extends Error {}

/** How long one encode or decode may take: far beyond what any real tokenizer needs for any real prompt. */
export const TOKENIZER_BUDGET_MS = 5_000;

/** Runs a tokenizer call under a time budget; a tokenizer.json's patterns are the model's code, not ours. */
function budgeted<T>(ms: number, doing: string, work: () => T): T {
  try {
    return timed(ms, doing, work);
  } catch (e) {
    // Sections with fields of the wrong kind can load and only fail here, deep in the library.
    if (e instanceof TypeError || e instanceof RangeError) {
      throw new TokenizerError(
        `The model's tokenizer (tokenizer.json) failed ${doing}: a section has fields of the wrong kind. Use the tokenizer.json from the model's publisher.`,
      );
    }
    throw e;
  }
}

function timed<T>(ms: number, doing: string, work: () => T): T {
  return withinBudget(
    ms,
    `The model's tokenizer (tokenizer.json) took longer than ${ms} ms ${doing}: one of its patterns probably backtracks without end. ` +
      "Use the tokenizer.json from the model's publisher, or another model.",
    work,
  );
}

type Json = Record<string, unknown>;

/** The parts of tokenizer.json the library reads without checking; checked here so a bad file gets a readable message. */
const PIPELINE_SECTIONS = ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder'] as const;
const Section = z.looseObject({ type: z.string() }).nullable().optional();
const TokenizerFile = z.looseObject({
  model: z.looseObject({}),
  added_tokens: z.array(z.looseObject({ id: z.number().int().min(0), content: z.string() })).default([]),
  normalizer: Section,
  pre_tokenizer: Section,
  post_processor: Section,
  decoder: Section,
});

/** tokenizer_config.json writes special tokens as a string or as an AddedToken dict {content, ...}. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string') return (value as Json).content as string;
  return undefined;
}

async function readJson(path: string, what: string): Promise<Json> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new TokenizerError(`cannot read ${what} (${path}): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Json;
  } catch (e) {
    throw new TokenizerError(`${what} is not valid JSON (${path}): ${(e as Error).message}`);
  }
}

export class TextTokenizer {
  readonly bosToken?: string;
  readonly eosToken?: string;
  readonly bosId?: number;
  readonly eosId?: number;

  private constructor(
    private readonly tokenizer: Tokenizer,
    /** The parsed tokenizer_config.json (chat_template and special tokens live here). */
    readonly config: Json,
  ) {
    this.bosToken = tokenContent(config.bos_token);
    this.eosToken = tokenContent(config.eos_token);
    this.bosId = this.bosToken === undefined ? undefined : tokenizer.token_to_id(this.bosToken);
    this.eosId = this.eosToken === undefined ? undefined : tokenizer.token_to_id(this.eosToken);
  }

  /** Builds from the parsed tokenizer.json and tokenizer_config.json objects. */
  static fromJson(tokenizerJson: Json, tokenizerConfig: Json = {}): TextTokenizer {
    if (!tokenizerJson.model || typeof tokenizerJson.model !== 'object') {
      throw new TokenizerError('tokenizer.json has no "model" section; is it a Hugging Face tokenizers file?');
    }
    const parsed = TokenizerFile.safeParse(tokenizerJson);
    if (!parsed.success) throw new TokenizerError(`tokenizer.json has an unexpected shape: ${describeIssues(parsed.error)}`);
    const json = parsed.data as Json;
    try {
      return new TextTokenizer(new Tokenizer(json, tokenizerConfig), tokenizerConfig);
    } catch (e) {
      throw new TokenizerError(`tokenizer.json could not be loaded: ${explainLoadFailure(json, tokenizerConfig, e as Error)}`);
    }
  }

  /** Loads `tokenizer.json` and (if present) `tokenizer_config.json` from a folder. */
  static async load(dir: string): Promise<TextTokenizer> {
    const tokenizerJson = await readJson(join(dir, 'tokenizer.json'), 'tokenizer.json');
    const config = await readJson(join(dir, 'tokenizer_config.json'), 'tokenizer_config.json').catch((e: TokenizerError) => {
      if (/ENOENT/.test(e.message)) return {};
      throw e;
    });
    return TextTokenizer.fromJson(tokenizerJson, config);
  }

  /** Token ids of `text`; with special tokens (default) the post-processor adds e.g. BOS. */
  encode(text: string, { addSpecialTokens = true, budgetMs = TOKENIZER_BUDGET_MS } = {}): number[] {
    return budgeted(
      budgetMs,
      `to split ${text.length} characters`,
      () => this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids,
    );
  }

  /** Text of `ids`; special tokens (BOS, EOS, <image>) are skipped unless asked for. */
  decode(ids: readonly number[], { skipSpecialTokens = true, budgetMs = TOKENIZER_BUDGET_MS } = {}): string {
    if (ids.length === 0) return '';
    return budgeted(budgetMs, `to decode ${ids.length} tokens`, () =>
      this.tokenizer.decode([...ids], { skip_special_tokens: skipSpecialTokens }),
    );
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }
}

/**
 * The library's own errors name unknown types well ("Unknown PreTokenizer type: X"), but a section of
 * the right type with wrong fields fails deep inside it with a JavaScript TypeError. The section to
 * blame is the one whose removal lets the file load.
 */
function explainLoadFailure(json: Json, config: Json, error: Error): string {
  const advice = "use the tokenizer.json from the model's publisher";
  const internal = error instanceof TypeError || error instanceof RangeError || error.message.includes('[object Object]');
  if (!internal) return `${error.message}; ${advice}`;
  for (const section of PIPELINE_SECTIONS) {
    if (json[section] === null || json[section] === undefined) continue;
    try {
      new Tokenizer({ ...json, [section]: null }, config);
      return `its ${section} section (type ${JSON.stringify((json[section] as Json).type)}) is missing fields or has fields of the wrong kind; ${advice}`;
    } catch {}
  }
  return `its model section (vocabulary and merges) is missing fields or has fields of the wrong kind; ${advice}`;
}
