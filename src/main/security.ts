/**
 * The renderer's security policy, electron-free so it can be tested directly and shared with
 * the web host: the CSP, and which IPC senders are ours.
 */

/** No network, no inline or remote scripts, images only from the app itself (plus data/blob URLs for previews). */
export const RENDERER_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The Vite dev server needs its HMR websocket and React's inline refresh preamble; dev only. */
export function devServerCsp(devOrigin: string): string {
  const ws = devOrigin.replace(/^http/, 'ws');
  return RENDERER_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace(
    "connect-src 'self'",
    `connect-src 'self' ${ws}`,
  );
}

/** The parts of an Electron WebFrameMain a sender check needs. */
export interface SenderFrame {
  url: string;
  parent: unknown;
}

/**
 * `scheme://host[:port]`. Not URL.origin: for a non-special scheme like app:// that is the opaque
 * "null", the same as file:// — which would make any local file look like our page.
 */
export function originOf(url: string): string | null {
  try {
    const { protocol, host } = new URL(url);
    return host ? `${protocol}//${host}` : null;
  } catch {
    return null;
  }
}

/** Only our own top-level page may call the app API: not iframes, not pages it was navigated to. */
export function isTrustedSender(frame: SenderFrame | null | undefined, trustedOrigin: string): boolean {
  return !!frame && frame.parent === null && originOf(frame.url) === trustedOrigin;
}

/** Sites a link in the app may open in the system browser: model downloads and the TransPrune paper. */
export const EXTERNAL_HOSTS = ['huggingface.co', 'arxiv.org'];

/** Plain https to an allowed host (or its subdomain), no credentials in the URL. */
export function isAllowedExternal(url: string): boolean {
  try {
    const { protocol, hostname, username, password } = new URL(url);
    const allowed = EXTERNAL_HOSTS.some((host) => hostname === host || hostname.endsWith(`.${host}`));
    return protocol === 'https:' && allowed && !username && !password;
  } catch {
    return false;
  }
}

/**
 * Where the window loads the renderer from. Only a development build honours ELECTRON_RENDERER_URL
 * (electron-vite's dev server): in a packaged app that variable would let whoever starts it choose
 * the page, and with it the origin the IPC trusts.
 */
export function rendererEntryUrl(isPackaged: boolean, env: NodeJS.ProcessEnv, appEntry: string): { url: string; devUrl?: string } {
  const devUrl = isPackaged ? undefined : env.ELECTRON_RENDERER_URL;
  return devUrl ? { url: devUrl, devUrl } : { url: appEntry };
}
