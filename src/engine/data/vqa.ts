import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';

/** One line of a VQA JSONL file in the LLaVA eval format; `image` is relative to the JSONL file. */
export const VqaItem = z.object({
  id: z.string().min(1),
  image: z.string().min(1),
  question: z.string().min(1),
  answer: z.string(),
  family: z.string().default('all'),
});
export type VqaItem = z.infer<typeof VqaItem>;

export function toJsonl(items: readonly VqaItem[]): string {
  return `${items.map((item) => JSON.stringify(item)).join('\n')}\n`;
}

/** Reads and validates a VQA JSONL file; returns the items with `imagePath` resolved against the file's folder. */
export async function readVqaJsonl(file: string): Promise<Array<VqaItem & { imagePath: string }>> {
  const folder = dirname(resolve(file));
  const lines = (await readFile(file, 'utf8')).split('\n');
  const items: Array<VqaItem & { imagePath: string }> = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      throw new Error(`${file}:${i + 1}: not valid JSON`);
    }
    const parsed = VqaItem.safeParse(json);
    if (!parsed.success)
      throw new Error(`${file}:${i + 1}: ${parsed.error.issues.map((e) => `${e.path.join('.')}: ${e.message}`).join('; ')}`);
    items.push({ ...parsed.data, imagePath: resolve(folder, parsed.data.image) });
  });
  return items;
}
