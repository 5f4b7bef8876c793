import { engineBench } from '../bench/engine.js';
import { ggufBench } from '../bench/gguf.js';
import { gpuBench } from '../bench/gpu.js';
import { pruningBench } from '../bench/pruning.js';
import { scaleBench } from '../bench/scale.js';
import type { BenchSuite } from '../bench/suite.js';
import { CliError, type CliCommand } from '../command.js';

/** Every benchmark, by name: `npm run bench -- <name> [options]`. Add one line per suite. */
const suites: Record<string, BenchSuite> = {
  engine: engineBench,
  gguf: ggufBench,
  gpu: gpuBench,
  pruning: pruningBench,
  scale: scaleBench,
};

export const benchCommand: CliCommand = {
  name: 'bench',
  summary: `run a benchmark (${Object.keys(suites).join(', ')}): prints a table, writes JSON to bench-results/`,
  usage: Object.values(suites)
    .map((s) => s.usage)
    .join('\n       npm run cli -- '),
  // Suites share option names (threads, ep, ...); each reads its own.
  options: Object.assign({}, ...Object.values(suites).map((s) => s.options)),
  async run({ values, positionals }) {
    const [name, ...rest] = positionals;
    const suite = name === undefined ? undefined : suites[name];
    if (!suite)
      throw new CliError(
        `which benchmark? ${Object.entries(suites)
          .map(([n, s]) => `\n  ${n.padEnd(8)} ${s.summary}`)
          .join('')}`,
      );
    if (rest.length) throw new CliError(`unexpected arguments: ${rest.join(' ')}`);
    await suite.run(values);
    return 0;
  },
};
