// `npm run fuzz -- <target|all> [--cases N] [--seed S]`: long runs of the property-test targets, with counts of crashes and hangs.
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { check, targets } from './targets.js';

const HANG_MS = 5_000;
const { values, positionals } = parseArgs({
  options: { cases: { type: 'string', default: '1000' }, seed: { type: 'string' } },
  allowPositionals: true,
});
const names = positionals[0] && positionals[0] !== 'all' ? [positionals[0]] : targets.map((t) => t.name);
let failed = false;
for (const name of names) {
  const target = targets.find((t) => t.name === name);
  if (!target) throw new Error(`no fuzz target "${name}"; known: ${targets.map((t) => t.name).join(', ')}`);
  const cases = Number(values.cases);
  const samples = fc.sample(target.input, { numRuns: cases, seed: values.seed === undefined ? Date.now() : Number(values.seed) });
  let crashes = 0;
  let hangs = 0;
  let slowest = 0;
  const start = performance.now();
  for (const input of samples) {
    const t0 = performance.now();
    const failure = await check(target, input);
    const ms = performance.now() - t0;
    slowest = Math.max(slowest, ms);
    if (ms > HANG_MS) hangs++;
    if (failure) {
      crashes++;
      if (crashes <= 3) console.error(`${name}: ${failure}\n  input: ${JSON.stringify(input)?.slice(0, 300)}`);
    }
  }
  failed ||= crashes + hangs > 0;
  console.log(
    `${name}: ${cases} cases, ${crashes} crashes, ${hangs} hangs (> ${HANG_MS} ms), slowest ${slowest.toFixed(0)} ms, ${((performance.now() - start) / 1000).toFixed(1)} s`,
  );
}
process.exit(failed ? 1 : 0);
