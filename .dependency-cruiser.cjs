// Which folder may import which: the layers of docs/architecture.md, checked by `npm run check:boundaries`
// (part of `npm test`). Type-only imports count too: a type is a dependency of the code that names it.

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'Modules form a tree of layers: a cycle means two modules are one thing, or a shared part wants its own module.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'src-not-tests-or-tools',
      comment: 'Product code stands on its own: tests and tools use src, never the other way round.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(tests|tools)/' },
    },
    {
      name: 'shared-imports-only-shared',
      comment: 'src/shared is the contract every process loads: it imports nothing of ours outside itself, and no Node or Electron.',
      severity: 'error',
      from: { path: '^src/shared/' },
      to: { pathNot: '^(src/shared/|node_modules/zod/)' },
    },
    {
      name: 'renderer-imports-only-shared',
      comment: 'The renderer runs in a sandboxed page: it reaches the rest only through the Client (IPC), so it imports only src/shared and itself.',
      severity: 'error',
      from: { path: '^src/renderer/' },
      to: { path: '^src/', pathNot: '^src/(renderer|shared)/' },
    },
    {
      name: 'preload-imports-only-shared',
      comment: 'The preload exposes the contract and nothing else.',
      severity: 'error',
      from: { path: '^src/preload/' },
      to: { path: '^src/', pathNot: '^src/(preload|shared)/' },
    },
    {
      name: 'engine-not-hosts',
      comment:
        'The engine is plain Node that every host runs: it knows nothing of main, the renderer, the preload, the web host, the API server or the CLI.',
      severity: 'error',
      from: { path: '^src/engine/' },
      to: { path: '^src/(main|renderer|preload|web|api|cli)/' },
    },
    {
      name: 'engine-without-electron',
      comment: 'The engine runs as a plain Node child process too (CLI, web host, API server, tests).',
      severity: 'error',
      from: { path: '^src/(engine|shared|cli|web|api)/' },
      to: { path: '^node_modules/electron/' },
    },
    {
      name: 'hosts-use-engine-entry',
      comment:
        'Main, the web host and the API server talk to the engine process through messages; in their own process they use only src/engine/index.ts.',
      severity: 'error',
      from: { path: '^src/(main|web|api)/' },
      to: { path: '^src/engine/', pathNot: '^src/engine/index\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
