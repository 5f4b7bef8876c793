import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { check, targets } from '../fuzz/targets.js';

/**
 * Property tests over the parsers that read untrusted files: every generated input is accepted or
 * refused with the parser's own error and a readable message, never a crash. Bounded for CI; the
 * same targets run longer with `npm run fuzz -- <target> --cases N`.
 */
describe.each(targets.map((t) => [t.name, t] as const))('%s parser under hostile input', (_name, target) => {
  it('accepts or refuses readably, for 150 generated inputs', async () => {
    await fc.assert(
      fc.asyncProperty(target.input, async (input) => {
        expect(await check(target, input)).toBeNull();
      }),
      { numRuns: 150, seed: 13 },
    );
  }, 120_000);
});
