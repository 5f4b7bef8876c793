// Builds a small but real Llama-style tokenizer.json (the format LLaVA-1.5 ships): a BPE model with
// byte fallback, Metaspace pre-tokenizer ("▁" for spaces, prepended to the first section only, as
// transformers' legacy=false Llama tokenizers do), a TemplateProcessing post-processor adding <s>,
// and the Replace/ByteFallback/Fuse/Strip decoder. Any text round-trips: known words become whole
// tokens, other ASCII falls back to characters, and everything else to <0xNN> byte tokens.

/** Words that become whole tokens (with the leading "▁"); covers the prompts the tests use. */
const WORDS = [
  'USER',
  'ASSISTANT',
  'SYSTEM',
  'A',
  'chat',
  'between',
  'a',
  'curious',
  'human',
  'and',
  'an',
  'artificial',
  'intelligence',
  'assistant',
  'What',
  'what',
  'is',
  'in',
  'the',
  'image',
  'picture',
  'this',
  'color',
  'colour',
  'of',
  'sky',
  'red',
  'green',
  'blue',
  'yellow',
  'white',
  'black',
  'Describe',
  'describe',
  'How',
  'many',
  'are',
  'there',
  'Is',
  'it',
  'yes',
  'no',
  'Yes',
  'No',
  'cat',
  'dog',
  'car',
  'tree',
  'square',
  'circle',
  'left',
  'right',
  'top',
  'bottom',
  'one',
  'two',
  'three',
  'four',
  'shape',
  'Answer',
  'question',
  'using',
  'single',
  'word',
  'phrase',
  'Where',
  'where',
  'which',
  'Which',
  'small',
  'large',
  'big',
  'on',
  'at',
  'to',
  'I',
  'see',
];

export const SPECIAL_TOKENS = { unk: '<unk>', bos: '<s>', eos: '</s>', image: '<image>', pad: '<pad>' } as const;

export interface SyntheticTokenizer {
  /** The tokenizer.json object. */
  json: Record<string, unknown>;
  /** Number of ids including the added tokens (<image>, <pad>). */
  size: number;
  bosId: number;
  eosId: number;
  imageId: number;
  padId: number;
}

function addedToken(id: number, content: string, special: boolean) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

/** Builds the tokenizer; deterministic, so every synthetic checkpoint shares the same ids. */
export function buildSyntheticTokenizer(): SyntheticTokenizer {
  const vocab: Record<string, number> = {};
  const add = (token: string) => {
    if (!(token in vocab)) vocab[token] = Object.keys(vocab).length;
  };
  add(SPECIAL_TOKENS.unk);
  add(SPECIAL_TOKENS.bos);
  add(SPECIAL_TOKENS.eos);
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  add('▁');
  for (let c = 0x21; c < 0x7f; c++) add(String.fromCharCode(c));

  // Merges grow each word left to right ("▁" + "w" -> "▁w", "▁w" + "h" -> "▁wh", ...); merge rank
  // is creation order, so a listed word always collapses into one token.
  const merges: string[] = [];
  for (const word of WORDS) {
    let piece = '▁';
    for (const ch of word) {
      const next = piece + ch;
      if (!(next in vocab)) {
        merges.push(`${piece} ${ch}`);
        add(next);
      }
      piece = next;
    }
  }

  const baseSize = Object.keys(vocab).length;
  const imageId = baseSize;
  const padId = baseSize + 1;
  const bosId = vocab[SPECIAL_TOKENS.bos];
  const eosId = vocab[SPECIAL_TOKENS.eos];

  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      addedToken(vocab[SPECIAL_TOKENS.unk], SPECIAL_TOKENS.unk, true),
      addedToken(bosId, SPECIAL_TOKENS.bos, true),
      addedToken(eosId, SPECIAL_TOKENS.eos, true),
      addedToken(imageId, SPECIAL_TOKENS.image, true),
      addedToken(padId, SPECIAL_TOKENS.pad, true),
    ],
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: SPECIAL_TOKENS.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: SPECIAL_TOKENS.bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: SPECIAL_TOKENS.bos, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [SPECIAL_TOKENS.bos]: { id: SPECIAL_TOKENS.bos, ids: [bosId], tokens: [SPECIAL_TOKENS.bos] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: SPECIAL_TOKENS.unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  return { json, size: baseSize + 2, bosId, eosId, imageId, padId };
}

/** A LLaVA-style chat template (content lists with {type:'image'} / {type:'text'} items). */
export const SYNTHETIC_CHAT_TEMPLATE =
  '{% for message in messages %}' +
  "{% if message['role'] == 'system' %}{{ message['content'][0]['text'] + ' ' }}" +
  "{% else %}{{ message['role'].upper() + ': ' }}" +
  "{% for item in message['content'] %}{% if item['type'] == 'image' %}{{ '<image>\\n' }}{% endif %}{% endfor %}" +
  "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}" +
  "{% if message['role'] == 'assistant' %}{{ eos_token }}{% else %}{{ ' ' }}{% endif %}" +
  '{% endif %}{% endfor %}' +
  "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";
