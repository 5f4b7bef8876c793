import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { findChromium, findElectronBinary } from '../../../tools/setup/binaries.mjs';
import { onnxruntimeVersion, preferredProvider, probeProviders } from '../../engine/worker/providers.js';
import { defaultUserDataDir, modelStoreDir } from '../../main/paths.js';
import type { CliCommand } from '../command.js';

/** `doctor`: what this machine can run, with the same provider probe the engine uses at start-up. */
export const doctor: CliCommand = {
  name: 'doctor',
  summary: 'print the environment: Node, onnxruntime, execution providers that load, Electron, Chromium, model store',
  usage: 'doctor [--user-data <dir>] [--json]',
  options: { 'user-data': { type: 'string' }, json: { type: 'boolean' } },
  async run({ values }) {
    const providers = await probeProviders();
    const store = modelStoreDir((values['user-data'] as string | undefined) ?? defaultUserDataDir());
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
      models: existsSync(store) ? readdirSync(store).filter((d) => existsSync(join(store, d, 'manifest.json'))).length : 0,
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
      ['model store', `${store} (${existsSync(store) ? `${report.models} model(s)` : 'not created yet'})`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [key, value] of rows) console.log(`${key.padEnd(width)}  ${value}`);
    return report.activeProvider ? 0 : 1;
  },
};
