// Run as a child process by tests/engine/providers.test.ts: what a CLI run with `--ep cuda` and a
// provider probe (engine start, doctor) print on this process's own stderr, native code included.
import { SessionFactory } from '../../src/engine/runtime/providers.js';
import { probeProviders } from '../../src/engine/worker/providers.js';
import { gemmModel } from '../../src/cli/bench/gemm.js';

const factories = await Promise.all(
  (['cuda', 'webgpu'] as const).map(async (requested) => {
    const factory = new SessionFactory(requested);
    await (await factory.create(gemmModel(2, 3, 4))).release();
    return factory.report;
  }),
);
console.log(JSON.stringify({ factories, probes: await probeProviders() }));
