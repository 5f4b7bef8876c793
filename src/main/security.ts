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
