import { readFile } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { RENDERER_CSP } from './security.js';

/**
 * The renderer is served from `app://renderer/` instead of file://, so it has a real origin that
 * IPC sender checks can match, and every response carries the CSP header.
 */
export const APP_SCHEME = 'app';
export const APP_ORIGIN = `${APP_SCHEME}://renderer`;
export const APP_ENTRY_URL = `${APP_ORIGIN}/index.html`;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.ico': 'image/x-icon',
};

/** Maps a request path onto a file under `root`, or null when it would escape it. */
export function resolveStaticPath(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const path = resolve(root, `.${decoded === '/' ? '/index.html' : decoded}`);
  const inside = relative(resolve(root), path);
  const escapes = inside === '' || inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside);
  return escapes ? null : path;
}

/** A static file response with the CSP and no-sniff headers; 404 for anything missing or outside root. */
export async function staticResponse(
  root: string,
  urlPath: string,
  csp = RENDERER_CSP,
): Promise<{ status: number; headers: Record<string, string>; body: Uint8Array<ArrayBuffer> }> {
  const headers = { 'content-security-policy': csp, 'x-content-type-options': 'nosniff' };
  const path = resolveStaticPath(root, urlPath);
  const body = path ? await readFile(path).catch(() => null) : null;
  if (!path || !body)
    return { status: 404, headers: { ...headers, 'content-type': 'text/plain' }, body: new TextEncoder().encode('not found') };
  return {
    status: 200,
    headers: { ...headers, 'content-type': MIME[extname(path)] ?? 'application/octet-stream' },
    body: new Uint8Array(body),
  };
}

export function rendererRoot(mainDir: string): string {
  return join(mainDir, '..', 'renderer');
}
