import { fileURLToPath } from 'node:url';

/**
 * The packaged test split of the synthetic VQA data (resources/vqa-test: 300 items, 50 per question
 * family, made by the generator in this folder). `eval --split test` reads it, so every machine scores
 * the same questions without generating them first.
 */
export const VQA_TEST_SPLIT_JSONL = fileURLToPath(new URL('../../../resources/vqa-test/test.jsonl', import.meta.url));
