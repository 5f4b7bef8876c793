import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { findElectronBinary } from '../../src/cli/binaries.mjs';

/** tools/setup: the postinstall's CI path, the Electron detection, and `npm start` without Electron. */
const ROOT = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);

async function node(script: string, env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(ROOT, script)], { env: { ...process.env, ...env }, cwd: ROOT });
    return { code: 0, output: stdout + stderr };
  } catch (e) {
    const failed = e as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

describe('postinstall (optional binaries)', () => {
  it('in CI makes no download attempt and prints one warning line per skipped binary, exit 0', async () => {
    const { code, output } = await node('tools/setup/optional-binaries.mjs', { CI: 'true' });
    expect(code).toBe(0);
    const lines = output.trim().split('\n').filter(Boolean);
    const expected = (findElectronBinary().path ? 0 : 1) + (`${process.platform}/${process.arch}` === 'linux/x64' ? 1 : 0);
    expect(lines).toHaveLength(expected);
    for (const line of lines) expect(line).toMatch(/^warning: .* skipped \(CI=true\); .*(work|runs on CPU)/);
  });
});

describe('Electron binary detection', () => {
  const root = () => mkdtempSync(join(tmpdir(), 'tp-electron-'));

  it('says why when the package, path.txt or the binary is missing', () => {
    expect(findElectronBinary(root())).toEqual({ path: null, reason: 'the electron package is not installed' });
    const noBinary = root();
    mkdirSync(join(noBinary, 'node_modules', 'electron'), { recursive: true });
    writeFileSync(join(noBinary, 'node_modules', 'electron', 'package.json'), '{}');
    expect(findElectronBinary(noBinary).reason).toMatch(/never downloaded/);
    writeFileSync(join(noBinary, 'node_modules', 'electron', 'path.txt'), 'electron');
    expect(findElectronBinary(noBinary).reason).toMatch(/missing at .*dist\/electron$/);
  });

  it('finds the binary path.txt names', () => {
    const installed = root();
    const pkg = join(installed, 'node_modules', 'electron');
    mkdirSync(join(pkg, 'dist'), { recursive: true });
    writeFileSync(join(pkg, 'package.json'), '{}');
    writeFileSync(join(pkg, 'path.txt'), 'electron');
    writeFileSync(join(pkg, 'dist', 'electron'), '');
    expect(findElectronBinary(installed)).toEqual({ path: join(pkg, 'dist', 'electron'), reason: null });
  });
});

describe('npm start', () => {
  it.skipIf(findElectronBinary().path !== null)('without Electron exits 1, saying why and what still works', async () => {
    const { code, output } = await node('tools/setup/start.mjs', {});
    expect(code).toBe(1);
    expect(output).toContain('TransPrune Studio cannot open: the Electron binary');
    expect(output).toContain('npm run cli -- --help');
    expect(output).toContain('npm run web');
  });
});

/** Whether Node `version` ([major, minor, patch]) meets an npm `engines.node` range of the forms the lock file holds. */
function meetsRange(version: number[], range: string): boolean {
  const parse = (text: string) => text.split('.').map((part) => Number(part) || 0);
  const compare = (a: number[], b: number[]) => a[0] - b[0] || (a[1] ?? 0) - (b[1] ?? 0) || (a[2] ?? 0) - (b[2] ?? 0);
  return range.split('||').some((alternative) =>
    alternative
      .trim()
      .replace(/(>=|<=|>|<|\^|~)\s+/g, '$1')
      .split(/\s+/)
      .every((condition) => {
        const [, op = '', bound] = /^(>=|<=|>|<|\^|~)?v?([\d.x*]+)$/.exec(condition) ?? [];
        if (bound === undefined) throw new Error(`engine range not understood: ${range}`);
        if (bound === '*') return true;
        const b = parse(bound);
        if (op === '>=') return compare(version, b) >= 0;
        if (op === '>') return compare(version, b) > 0;
        if (op === '<') return compare(version, b) < 0;
        if (op === '<=') return compare(version, b) <= 0;
        if (op === '^') return version[0] === b[0] && compare(version, b) >= 0;
        // A bare major (`20`) or major.minor matches every version under it.
        return bound.split('.').every((part, i) => part === 'x' || part === '*' || version[i] === Number(part));
      }),
  );
}

describe('the documented Node version', () => {
  it('is one every installed package accepts, so `npm install` prints no EBADENGINE warning', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const documented = /^Node ≥ (\d+)\.(\d+)/m.exec(readme);
    expect(documented, 'README: "Node ≥ <major>.<minor>"').not.toBeNull();
    const version = [Number(documented![1]), Number(documented![2]), 0];
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; optional?: boolean; engines?: { node?: string } }>;
    };
    const refusing = Object.entries(lock.packages)
      .filter(([name, p]) => name && !p.optional && p.engines?.node && !meetsRange(version, p.engines.node))
      .map(([name, p]) => `${name.replace(/^.*node_modules\//, '')}@${p.version} wants ${p.engines!.node}`);
    expect(refusing).toEqual([]);
    // CI installs the same Node the README documents.
    expect(readFileSync(join(ROOT, '.ci', 'run'), 'utf8')).toContain(`NODE_MAJOR=${version[0]}`);
  });
});
