import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveStaticPath, staticResponse } from '../../src/main/protocol.js';
import { RENDERER_CSP } from '../../src/main/security.js';
import { defaultUserDataDir, modelStoreDir } from '../../src/main/paths.js';

const parent = mkdtempSync(join(tmpdir(), 'tp-static-'));
const root = join(parent, 'renderer');
mkdirSync(join(root, 'assets'), { recursive: true });
writeFileSync(join(root, 'index.html'), '<!doctype html><title>t</title>');
writeFileSync(join(root, 'assets', 'app.js'), 'console.log(1)');
writeFileSync(join(parent, 'secret.txt'), 'secret');

describe('serving the renderer', () => {
  it('maps request paths inside the root', () => {
    expect(resolveStaticPath(root, '/')).toBe(join(root, 'index.html'));
    expect(resolveStaticPath(root, '/assets/app.js')).toBe(join(root, 'assets', 'app.js'));
    expect(resolveStaticPath(root, '/assets/../index.html')).toBe(join(root, 'index.html'));
  });

  it('refuses anything that escapes the root', () => {
    for (const path of [
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e%2fsecret.txt',
      '/index.html%00.js',
      '/%E0%A4%A',
    ]) {
      expect(resolveStaticPath(root, path), path).toBeNull();
    }
  });

  it('answers with the CSP, the type and no-sniff; 404 otherwise', async () => {
    const page = await staticResponse(root, '/');
    expect(page.status).toBe(200);
    expect(page.headers).toMatchObject({
      'content-security-policy': RENDERER_CSP,
      'content-type': 'text/html; charset=utf-8',
      'x-content-type-options': 'nosniff',
    });
    expect(new TextDecoder().decode(page.body)).toContain('<title>t</title>');
    expect((await staticResponse(root, '/assets/app.js')).headers['content-type']).toBe('text/javascript; charset=utf-8');
    const escaped = await staticResponse(root, '/../secret.txt');
    expect(escaped.status).toBe(404);
    expect(new TextDecoder().decode(escaped.body)).not.toContain('secret');
    expect((await staticResponse(root, '/missing.js')).status).toBe(404);
  });
});

describe('data folders', () => {
  it("follows Electron's userData location per platform", () => {
    expect(defaultUserDataDir('linux', { XDG_CONFIG_HOME: '/x/config' })).toBe('/x/config/TransPrune Studio');
    expect(defaultUserDataDir('win32', { APPDATA: 'C:/Users/me/AppData/Roaming' })).toBe(
      join('C:/Users/me/AppData/Roaming', 'TransPrune Studio'),
    );
    expect(defaultUserDataDir('darwin', {})).toMatch(/Library\/Application Support\/TransPrune Studio$/);
    expect(modelStoreDir('/data')).toBe(join('/data', 'models'));
  });
});
