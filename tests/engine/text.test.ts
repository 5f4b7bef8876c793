import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TextTokenizer, TokenizerError } from '../../src/engine/text/tokenizer.js';
import {
  ChatPromptError,
  encodeChat,
  findImageToken,
  loadChatTemplate,
  renderChat,
  LLAVA_15_CHAT_TEMPLATE,
} from '../../src/engine/text/chat.js';
import { TextStream } from '../../src/engine/runtime/text-stream.js';
import { makeSyntheticCheckpoint, type SyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { SYNTHETIC_CHAT_TEMPLATE } from '../../src/engine/checkpoint/synthetic-tokenizer.js';

const tmp = mkdtempSync(join(tmpdir(), 'text-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let ck: SyntheticCheckpoint;
let tok: TextTokenizer;
let vocab: Record<string, number>;
beforeAll(async () => {
  ck = await makeSyntheticCheckpoint(join(tmp, 'tiny'));
  tok = await TextTokenizer.load(ck.dir);
  vocab = JSON.parse(readFileSync(join(ck.dir, 'tokenizer.json'), 'utf8')).model.vocab;
});

/** Ids looked up directly in tokenizer.json's vocabulary: an expectation independent of the library. */
const idsOf = (pieces: string[]) =>
  pieces.map((p) => {
    if (p === '<image>') return ck.tokens.image;
    if (!(p in vocab)) throw new Error(`test bug: ${p} not in vocab`);
    return vocab[p];
  });

describe('TextTokenizer', () => {
  it('encodes with the Llama conventions: ▁ word pieces, BOS, byte fallback', () => {
    expect(tok.encode('What is the color')).toEqual([ck.tokens.bos, ...idsOf(['▁What', '▁is', '▁the', '▁color'])]);
    expect(tok.encode('sky é', { addSpecialTokens: false })).toEqual(idsOf(['▁sky', '▁', '<0xC3>', '<0xA9>']));
    expect(tok.bosId).toBe(ck.tokens.bos);
    expect(tok.eosId).toBe(ck.tokens.eos);
    expect(tok.tokenToId('<image>')).toBe(ck.tokens.image);
    expect(tok.idToToken(ck.tokens.eos)).toBe('</s>');
  });

  it('decodes back to the text, skipping special tokens unless asked', () => {
    const text = 'Describe the image: a red square, naïve café 🙂!';
    expect(tok.decode(tok.encode(text))).toBe(text);
    expect(tok.decode([ck.tokens.bos, ...idsOf(['▁yes']), ck.tokens.eos])).toBe('yes');
    expect(tok.decode([ck.tokens.bos, ...idsOf(['▁yes']), ck.tokens.eos], { skipSpecialTokens: false })).toBe('<s> yes</s>');
  });

  it('fails clearly on missing, malformed or foreign tokenizer files', async () => {
    await expect(TextTokenizer.load(join(tmp, 'nowhere'))).rejects.toThrow(/cannot read tokenizer\.json.*ENOENT/);
    const bad = join(tmp, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'tokenizer.json'), '{"model": ');
    await expect(TextTokenizer.load(bad)).rejects.toThrow(TokenizerError);
    writeFileSync(join(bad, 'tokenizer.json'), '{"vocab": {}}');
    await expect(TextTokenizer.load(bad)).rejects.toThrow(/no "model" section/);
  });

  it('loads without tokenizer_config.json (no BOS/EOS names then)', async () => {
    const dir = join(tmp, 'no-config');
    mkdirSync(dir);
    copyFileSync(join(ck.dir, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    const bare = await TextTokenizer.load(dir);
    expect(bare.bosToken).toBeUndefined();
    expect(bare.encode('the sky', { addSpecialTokens: false })).toEqual(idsOf(['▁the', '▁sky']));
  });

  it('streams byte-fallback text through the runtime TextStream without broken characters', () => {
    const answer = 'naïve 🙂 sky';
    const ids = tok.encode(answer, { addSpecialTokens: false });
    const stream = new TextStream(tok);
    const pieces = ids.map((id) => stream.push(id));
    pieces.push(stream.flush());
    for (const p of pieces) expect(p).not.toContain('\uFFFD');
    expect(pieces.join('')).toBe(answer);
    expect(pieces.filter((p) => p === '').length).toBeGreaterThan(0); // the emoji's first bytes were held back
  });
});

describe('chat prompts', () => {
  it("renders LLaVA-1.5's default format, single and multi-turn", () => {
    expect(renderChat([{ role: 'user', text: 'What is in the image?', image: true }], { eosToken: '</s>' })).toBe(
      'USER: <image>\nWhat is in the image? ASSISTANT:',
    );
    expect(
      renderChat(
        [
          { role: 'system', text: 'A chat.' },
          { role: 'user', text: 'Q1', image: true },
          { role: 'assistant', text: 'A1' },
          { role: 'user', text: 'Q2' },
        ],
        { eosToken: '</s>' },
      ),
    ).toBe('A chat. USER: <image>\nQ1 ASSISTANT: A1</s>USER: Q2 ASSISTANT:');
    expect(renderChat([{ role: 'user', text: 'Q', image: true }], { addGenerationPrompt: false })).toBe('USER: <image>\nQ ');
  });

  it('finds the checkpoint template in chat_template.jinja, chat_template.json or tokenizer_config.json', async () => {
    const dir = join(tmp, 'templates');
    mkdirSync(dir);
    expect(await loadChatTemplate(dir, {})).toBeUndefined();
    expect(
      await loadChatTemplate(dir, {
        chat_template: [
          { name: 'tool_use', template: 'T' },
          { name: 'default', template: 'D' },
        ],
      }),
    ).toBe('D');
    expect(await loadChatTemplate(dir, { chat_template: 'C' })).toBe('C');
    writeFileSync(join(dir, 'chat_template.json'), JSON.stringify({ chat_template: 'J' }));
    expect(await loadChatTemplate(dir, { chat_template: 'C' })).toBe('J');
    writeFileSync(join(dir, 'chat_template.jinja'), 'K');
    expect(await loadChatTemplate(dir, { chat_template: 'C' })).toBe('K');
    const withTemplate = await makeSyntheticCheckpoint(join(tmp, 'with-template'), { chatTemplate: true });
    const config = JSON.parse(readFileSync(join(withTemplate.dir, 'tokenizer_config.json'), 'utf8'));
    expect(await loadChatTemplate(withTemplate.dir, config)).toBe(SYNTHETIC_CHAT_TEMPLATE);
  });

  it('renders an HF-style template with content lists', () => {
    const turns = [
      { role: 'user' as const, text: 'What color?', image: true },
      { role: 'assistant' as const, text: 'red' },
      { role: 'user' as const, text: 'Why?' },
    ];
    expect(renderChat(turns, { template: SYNTHETIC_CHAT_TEMPLATE, eosToken: '</s>' })).toBe(
      'USER: <image>\nWhat color? ASSISTANT: red</s>USER: Why? ASSISTANT:',
    );
  });

  it('tokenizes the prompt and locates the single <image> token', () => {
    const prompt = encodeChat(tok, [{ role: 'user', text: 'What is the color of the sky?', image: true }], {
      imageTokenId: ck.tokens.image,
    });
    expect(prompt.text).toBe('USER: <image>\nWhat is the color of the sky? ASSISTANT:');
    expect(prompt.ids).toEqual([
      ck.tokens.bos,
      ...idsOf([
        '▁USER',
        ':',
        '▁',
        '<image>',
        '<0x0A>',
        'W',
        'h',
        'a',
        't',
        '▁is',
        '▁the',
        '▁color',
        '▁of',
        '▁the',
        '▁sky',
        '?',
        '▁ASSISTANT',
        ':',
      ]),
    ]);
    expect(prompt.imageIndex).toBe(4);
  });

  it('does not add a second BOS when the template writes one', () => {
    const template = "{{ bos_token }}{% for m in messages %}{{ m['content'][1]['text'] }} <image>{% endfor %}";
    const prompt = encodeChat(tok, [{ role: 'user', text: 'sky', image: true }], { template, imageTokenId: ck.tokens.image });
    expect(prompt.ids.filter((id) => id === ck.tokens.bos)).toHaveLength(1);
    expect(prompt.ids[0]).toBe(ck.tokens.bos);
  });

  it('rejects prompts without an image or with two, and broken templates', () => {
    expect(() => encodeChat(tok, [{ role: 'user', text: 'no picture' }], { imageTokenId: ck.tokens.image })).toThrow(
      /no <image> placeholder/,
    );
    expect(() => findImageToken([1, 5, 5], 5)).toThrow(/more than one <image>/);
    expect(() => encodeChat(tok, [{ role: 'user', text: 'a <image> in text', image: true }], { imageTokenId: ck.tokens.image })).toThrow(
      ChatPromptError,
    );
    expect(() => renderChat([{ role: 'user', text: 'x' }], { template: '{% for %}' })).toThrow(/does not parse/);
    expect(LLAVA_15_CHAT_TEMPLATE).toContain('ASSISTANT:');
  });
});

/** The parts of tokenizer.json the cases below break. */
type TokenizerJson = { decoder: unknown; normalizer: unknown; added_tokens: unknown; model: { merges: unknown } };

describe('tokenizer.json files the library cannot read', () => {
  const base = () => JSON.parse(readFileSync(join(ck.dir, 'tokenizer.json'), 'utf8'));
  it.each([
    [
      'a decoder with a wrong field',
      (j: TokenizerJson) => (j.decoder = { type: 'Sequence', decoders: 5 }),
      /its decoder section \(type "Sequence"\) is missing fields/,
    ],
    ['merges that are not a list', (j: TokenizerJson) => (j.model.merges = 'a b'), /its model section .* is missing fields/],
    ['an added token without content', (j: TokenizerJson) => (j.added_tokens = [{ id: 1 }]), /unexpected shape: added_tokens\.0\.content/],
    [
      'an unknown normalizer',
      (j: TokenizerJson) => (j.normalizer = { type: 'Bogus' }),
      /Unknown Normalizer type: Bogus; use the tokenizer\.json from the model's publisher/,
    ],
  ])('%s gets a message naming the section, not a JavaScript TypeError', (_what, edit, message) => {
    const json = base();
    edit(json);
    const error = (() => {
      try {
        TextTokenizer.fromJson(json);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error).toBeInstanceOf(TokenizerError);
    expect(error!.message).toMatch(message);
    expect(error!.message).not.toMatch(/Cannot read properties|is not a function|is not iterable/);
  });
});
