// The import-boundary check (.dependency-cruiser.cjs) against small trees with one wrong arrow each:
// every rule must catch its arrow and let the allowed ones through; the real src must pass.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cruise, type IConfiguration, type ICruiseResult } from 'dependency-cruiser';
import { afterAll, describe, expect, it } from 'vitest';

const config = createRequire(import.meta.url)('../../.dependency-cruiser.cjs') as IConfiguration;
const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** Cruises `src` of a tree made of `files` (path -> the module paths it imports) with the project's rules. */
async function violations(files: Record<string, string[]>): Promise<string[]> {
  const root = mkdtempSync(join(tmpdir(), 'boundaries-'));
  roots.push(root);
  for (const [path, imports] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), `${imports.map((m, i) => `import * as m${i} from '${m}';`).join('\n')}\nexport const x = 1;\n`);
  }
  const result = await cruise(['src'], {
    ruleSet: { forbidden: config.forbidden },
    validate: true,
    baseDir: root,
    tsPreCompilationDeps: true,
  });
  const summary = (result.output as ICruiseResult).summary;
  return summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`);
}

describe('import boundaries', () => {
  it.each([
    ['shared-imports-only-shared', { 'src/shared/a.ts': ['../engine/e'], 'src/engine/e.ts': [] }, 'src/shared/a.ts -> src/engine/e.ts'],
    ['shared-imports-only-shared', { 'src/shared/a.ts': ['node:fs'] }, 'src/shared/a.ts -> fs'],
    ['renderer-imports-only-shared', { 'src/renderer/r.ts': ['../main/m'], 'src/main/m.ts': [] }, 'src/renderer/r.ts -> src/main/m.ts'],
    ['preload-imports-only-shared', { 'src/preload/p.ts': ['../main/m'], 'src/main/m.ts': [] }, 'src/preload/p.ts -> src/main/m.ts'],
    ['engine-not-hosts', { 'src/engine/e.ts': ['../cli/c'], 'src/cli/c.ts': [] }, 'src/engine/e.ts -> src/cli/c.ts'],
    [
      'hosts-use-engine-entry',
      { 'src/main/m.ts': ['../engine/runtime/model'], 'src/engine/runtime/model.ts': [] },
      'src/main/m.ts -> src/engine/runtime/model.ts',
    ],
    [
      'hosts-use-engine-entry',
      { 'src/web/w.ts': ['../engine/trace/io'], 'src/engine/trace/io.ts': [] },
      'src/web/w.ts -> src/engine/trace/io.ts',
    ],
    [
      'hosts-use-engine-entry',
      { 'src/api/a.ts': ['../engine/runtime/engine'], 'src/engine/runtime/engine.ts': [] },
      'src/api/a.ts -> src/engine/runtime/engine.ts',
    ],
    ['engine-not-hosts', { 'src/engine/e.ts': ['../api/a'], 'src/api/a.ts': [] }, 'src/engine/e.ts -> src/api/a.ts'],
    ['renderer-imports-only-shared', { 'src/renderer/r.ts': ['../api/a'], 'src/api/a.ts': [] }, 'src/renderer/r.ts -> src/api/a.ts'],
    [
      'src-not-tests-or-tools',
      { 'src/cli/c.ts': ['../../tests/helpers/h'], 'tests/helpers/h.ts': [] },
      'src/cli/c.ts -> tests/helpers/h.ts',
    ],
    [
      'src-not-tests-or-tools',
      { 'src/engine/e.ts': ['../../tools/setup/s'], 'tools/setup/s.ts': [] },
      'src/engine/e.ts -> tools/setup/s.ts',
    ],
    ['no-cycles', { 'src/renderer/a.ts': ['./b'], 'src/renderer/b.ts': ['./a'] }, 'src/renderer/a.ts -> src/renderer/b.ts'],
  ])('%s catches %j', async (rule, files, arrow) => {
    expect(await violations(files)).toContain(`${rule}: ${arrow}`);
  });

  it('lets the allowed arrows through', async () => {
    const allowed = {
      'src/shared/a.ts': ['./b'],
      'src/shared/b.ts': [],
      'src/renderer/r.ts': ['../shared/a', './s'],
      'src/renderer/s.ts': [],
      'src/preload/p.ts': ['../shared/a'],
      'src/engine/index.ts': ['./image/validate'],
      'src/engine/image/validate.ts': ['../../shared/b'],
      'src/main/m.ts': ['../engine/index', '../shared/a'],
      'src/web/w.ts': ['../main/m', '../engine/index'],
      'src/api/a.ts': ['../main/m', '../engine/index', '../shared/a'],
      'src/cli/c.ts': ['../engine/image/validate', '../main/m'],
      'tests/t.ts': ['../src/engine/image/validate'],
    };
    expect(await violations(allowed)).toEqual([]);
  });

  it('the project itself has no wrong arrows', async () => {
    const result = await cruise(['src'], { ...config.options, ruleSet: { forbidden: config.forbidden }, validate: true });
    const summary = (result.output as ICruiseResult).summary;
    expect(summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`)).toEqual([]);
    expect(summary.totalCruised).toBeGreaterThan(150);
  });
});
