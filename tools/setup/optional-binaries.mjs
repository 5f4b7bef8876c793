// The root postinstall. Two downloads are optional: the Electron binary (GitHub) and
// onnxruntime-node's CUDA provider libraries (NuGet, Linux x64 only). npm must not run those
// packages' own scripts (package.json "allowScripts" denies them) because they fail the whole
// install when offline. Here each is tried with a timeout, and a failure prints one line and
// leaves the install successful. In CI (CI=true) no network attempt is made.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findElectronBinary } from '../../src/cli/binaries.mjs';
import { installCudaProvider, NUGET_INDEX } from './cuda-provider.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const inCi = process.env.CI === 'true' || process.env.CI === '1';

const warn = (what, why, stillWorks) => console.warn(`warning: ${what} skipped (${why}); ${stillWorks}`);

/** Runs a node script; resolves to null on success or a one-line reason on failure. */
function runNode(script, env, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => resolve(e.message));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(null);
      else if (signal === 'SIGKILL') resolve(`no answer within ${timeoutMs / 1000} s`);
      else resolve(reasonFrom(output) ?? `exit code ${code}`);
    });
  });
}

function reasonFrom(output) {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const network = lines.find((l) => /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|fetch failed|certificate/i.test(l));
  return (network ?? lines.find((l) => /error/i.test(l)) ?? lines.at(-1))?.replace(/^\w*Error:\s*/, '').slice(0, 160);
}

async function electronBinary() {
  const what = 'Electron binary download from GitHub';
  const stillWorks =
    'the desktop app cannot start, but `npm run cli`, `npm run web` and `npm test` work; retry with `npx install-electron`';
  if (findElectronBinary(ROOT).path) return;
  if (inCi) return warn(what, 'CI=true', stillWorks);
  const installer = join(ROOT, 'node_modules', 'electron', 'install.js');
  if (!existsSync(installer)) return warn(what, 'the electron package is not installed', stillWorks);
  const failure = await runNode(installer, {}, 180_000);
  if (failure) warn(what, failure, stillWorks);
}

async function onnxruntimeCuda() {
  // Only linux/x64 has CUDA libraries to fetch; the other platforms' providers ship in the npm package.
  if (`${process.platform}/${process.arch}` !== 'linux/x64') return;
  const what = 'onnxruntime-node CUDA provider download from NuGet';
  const stillWorks = 'inference runs on CPU (or WebGPU where a GPU adapter exists); retry with `node tools/setup/optional-binaries.mjs`';
  if (inCi) return warn(what, 'CI=true', stillWorks);
  if (process.env.ONNXRUNTIME_NODE_INSTALL === 'skip') return warn(what, 'ONNXRUNTIME_NODE_INSTALL=skip', stillWorks);
  let pkgDir;
  try {
    pkgDir = dirname(createRequire(join(ROOT, 'package.json')).resolve('onnxruntime-node/package.json'));
  } catch {
    return warn(what, 'onnxruntime-node is not installed', stillWorks);
  }
  const binDir = process.env.TRANSPRUNE_ORT_BIN_DIR; // tests install into a scratch folder
  if (existsSync(join(binDir ?? join(pkgDir, 'bin', 'napi-v6', 'linux', 'x64'), 'libonnxruntime_providers_cuda.so'))) return;
  const index = process.env.TRANSPRUNE_NUGET_INDEX ?? NUGET_INDEX; // a mirror, or a test's stand-in feed
  try {
    const installed = await installCudaProvider({ pkgDir, index, binDir, signal: AbortSignal.timeout(600_000) });
    console.log(`onnxruntime-node CUDA provider installed (${installed.length} files, SHA512 verified)`);
  } catch (e) {
    warn(what, reasonFrom(e.cause?.message ?? e.message) ?? 'unknown error', stillWorks);
  }
}

await Promise.all([electronBinary(), onnxruntimeCuda()]);
