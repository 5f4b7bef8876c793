import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, matchesGlob, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * electron-builder.yml, checked without building an installer (that needs network): the schema
 * electron-builder itself validates against, and that every native file installed here would
 * be unpacked from the asar.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const require = createRequire(import.meta.url);
const yaml = require('js-yaml') as { load(text: string): Record<string, unknown> };
const { validateConfiguration } = require('app-builder-lib/out/util/config/config.js') as {
  validateConfiguration(config: unknown, logger: unknown): Promise<void>;
};
const config = yaml.load(readFileSync(join(ROOT, 'electron-builder.yml'), 'utf8')) as {
  asarUnpack: string[];
  files: string[];
  extraResources: { from: string }[];
  linux: { target: string[]; files: string[] };
  win: { target: string; files: string[] };
  mac: { target: { target: string }[]; files: string[] };
  npmRebuild: boolean;
};

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

describe('electron-builder config', () => {
  it("passes electron-builder's own schema", async () => {
    await expect(validateConfiguration(config, { add() {}, isEnabled: false })).resolves.toBeUndefined();
  });

  it('targets AppImage + deb, nsis and dmg', () => {
    expect(config.linux.target).toEqual(['AppImage', 'deb']);
    expect(config.win.target).toBe('nsis');
    expect(config.mac.target.map((t) => t.target)).toEqual(['dmg']);
    expect(config.npmRebuild).toBe(false);
    expect(config.extraResources.map((r) => r.from)).toEqual(['resources']);
  });

  it("keeps only the target platform's onnxruntime binaries in each installer", () => {
    const ortDirs = { linux: 'linux', win: 'win32', mac: 'darwin' } as const;
    for (const [target, own] of Object.entries(ortDirs) as [keyof typeof ortDirs, string][]) {
      const excluded = (dir: string) =>
        config[target].files.some(
          (p) =>
            p.startsWith('!') && matchesGlob(`node_modules/onnxruntime-node/bin/napi-v6/${dir}/x64/onnxruntime_binding.node`, p.slice(1)),
        );
      for (const dir of Object.values(ortDirs)) expect(excluded(dir), `${target} installer, ${dir} binaries`).toBe(dir !== own);
    }
  });

  it('unpacks every native library and binding installed for this platform', () => {
    const nativeDirs = [
      join(ROOT, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', process.platform, process.arch),
      join(ROOT, 'node_modules', '@img'),
    ];
    const natives = nativeDirs
      .flatMap(walk)
      .map((p) => relative(ROOT, p).split('\\').join('/'))
      .filter((p) => /\.(node|so(\.\d+)*|dylib|dll)$/.test(p));
    expect(natives.some((p) => p.endsWith('onnxruntime_binding.node'))).toBe(true);
    expect(natives.some((p) => p.includes('sharp'))).toBe(true);
    const packed = natives.filter((p) => !config.asarUnpack.some((pattern) => matchesGlob(p, pattern)));
    expect(packed).toEqual([]);
  });
});

describe('release fuses', () => {
  it('turn off running as node, NODE_OPTIONS and the --inspect arguments', () => {
    const fuses = (yaml.load(readFileSync(join(ROOT, 'electron-builder.yml'), 'utf8')) as { electronFuses: Record<string, boolean> })
      .electronFuses;
    expect(fuses).toMatchObject({ runAsNode: false, enableNodeOptionsEnvironmentVariable: false, enableNodeCliInspectArguments: false });
  });
});
