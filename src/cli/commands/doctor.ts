import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { findChromium, findElectronBinary } from '../binaries.mjs';
import { listPacks } from '../../engine/pack/store.js';
import { cudaLibraries, type CudaLibrary } from '../../engine/worker/cuda-libraries.js';
import { onnxruntimeVersion, preferredProvider, probeProviders } from '../../engine/worker/providers.js';
import { defaultUserDataDir, formerCliStoreDir, modelStoreDir } from '../../main/paths.js';
import type { CliCommand } from '../command.js';

/** `doctor`: what this machine can run, with the same provider probe the engine uses at start-up. */
export const doctor: CliCommand = {
  name: 'doctor',
  summary: 'print the environment: Node, onnxruntime, execution providers that load, Electron, Chromium, the model store',
  usage: 'doctor [--user-data <dir>] [--json]',
  options: { 'user-data': { type: 'string' }, json: { type: 'boolean' } },
  async run({ values }) {
    const providers = await probeProviders();
    const store = modelStoreDir((values['user-data'] as string | undefined) ?? defaultUserDataDir());
    const former = formerCliStoreDir();
    const formerModels = store === former ? 0 : (await listPacks(former)).length;
    const electron = findElectronBinary();
    const report = {
      node: process.versions.node,
      platform: `${process.platform}/${process.arch}`,
      onnxruntime: onnxruntimeVersion(),
      providers,
      activeProvider: providers.some((p) => p.loads) ? preferredProvider(providers) : null,
      electron: electron.path ?? null,
      electronMissingReason: electron.reason,
      chromium: findChromium(),
      modelStore: store,
      modelStoreFrom: process.env.TRANSPRUNE_HOME ? 'TRANSPRUNE_HOME' : 'user data',
      models: (await listPacks(store)).length,
      formerCliModels: formerModels,
      cuda: cudaReport(),
    };
    if (values.json) {
      console.log(JSON.stringify(report, null, 2));
      return 0;
    }
    const rows: [string, string][] = [
      ['node', `${report.node} (${report.platform})`],
      ['onnxruntime-node', report.onnxruntime],
      ...providers.map((p): [string, string] => [`  provider ${p.name}`, p.loads ? 'loads' : `does not load: ${p.error}`]),
      ['active provider', report.activeProvider ?? 'none loads'],
      ['electron binary', report.electron ?? `absent: ${report.electronMissingReason}`],
      ['chromium (tests)', report.chromium ?? 'absent (apt-get install chromium, or set CHROMIUM_PATH)'],
      ['cuda provider', report.cuda.provider ?? 'not installed (Linux x64: `node tools/setup/optional-binaries.mjs` fetches it)'],
      ...report.cuda.libraries.map((l): [string, string] => [
        `  needs ${l.what}`,
        l.path ? `${l.soname}: ${l.path}` : `${l.soname}: missing`,
      ]),
      [
        'model store',
        `${storeLine(store, report.models)}, ${process.env.TRANSPRUNE_HOME ? 'from TRANSPRUNE_HOME' : "the app's user-data folder"}; the app and the CLI share it`,
      ],
      ...(formerModels > 0
        ? [
            [
              '  former cli store',
              `${former} holds ${formerModels} model(s) the app does not see: import their checkpoints again, or move the folders into the store`,
            ] as [string, string],
          ]
        : []),
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [key, value] of rows) console.log(`${key.padEnd(width)}  ${value}`);
    return report.activeProvider ? 0 : 1;
  },
};

function storeLine(dir: string, models: number): string {
  return `${dir} (${existsSync(dir) ? `${models} model(s)` : 'not created yet'})`;
}

/** The CUDA provider onnxruntime-node would load, and the CUDA and cuDNN libraries it needs from this machine. */
function cudaReport(): { provider: string | null; libraries: CudaLibrary[] } {
  if (process.platform !== 'linux') return { provider: null, libraries: [] };
  const pkgDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  const provider = join(pkgDir, 'bin', 'napi-v6', 'linux', process.arch, 'libonnxruntime_providers_cuda.so');
  return existsSync(provider) ? { provider, libraries: cudaLibraries(provider) } : { provider: null, libraries: [] };
}
