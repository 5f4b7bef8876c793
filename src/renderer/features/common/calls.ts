import type { AppCallName, AppRequest, AppResponse } from '../../../shared/ipc.js';
import type { Saved } from '../../../shared/ipc-features.js';
import type { AppError } from '../../../shared/result.js';
import type { StoredImage } from '../../../shared/conversation.js';
import { getOrInsert } from '../../../shared/get-or-insert.js';
import type { Client } from '../../client/client.js';

/** Calls the app API and returns the value, or throws an Error with the message the user should see. */
export async function callOrThrow<K extends AppCallName>(client: Client, name: K, request: AppRequest<K>): Promise<AppResponse<K>> {
  const result = await client.call(name, request);
  if (!result.ok) throw new Error(userMessage(result.error));
  return result.value;
}

/**
 * An error as the user should read it: what happened and what to do, not process signals or a schema
 * dump. Messages written for users (storage, image intake, the importer) pass through unchanged.
 */
export function userMessage({ code, message }: AppError): string {
  switch (code) {
    case 'engine-crashed':
      return 'The engine stopped unexpectedly and was restarted. Your text is kept; try again.';
    case 'engine-unavailable':
      // The engine host's own wording names a state and a signal; other callers (downloads) already speak to the user.
      return /^the engine is /.test(message)
        ? 'The engine is not running right now (it may be restarting). Try again in a moment.'
        : message;
    case 'invalid-request': {
      // z.prettifyError: "✖ <issue>\n  → at <path>" per issue; the first issue says enough.
      const issue = /^✖ (.+?)(?:\n\s*→ at (.+))?$/m.exec(message);
      return issue ? `That was not accepted: ${issue[1]}${issue[2] ? ` (${issue[2]})` : ''}.` : message;
    }
    default:
      return message;
  }
}

/**
 * Finishes an export and says where it went: Electron saved it where the user chose; in the browser
 * preview the file comes back and the browser downloads it. Undefined when the user cancelled.
 */
export function deliverExport(saved: Saved): string | undefined {
  if (saved.download) {
    const { fileName, mimeType, data } = saved.download;
    const url = URL.createObjectURL(new Blob([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], { type: mimeType }));
    const link = Object.assign(document.createElement('a'), { href: url, download: fileName });
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    return `Downloaded ${fileName} to your browser's downloads folder.`;
  }
  return saved.path ? `Saved to ${saved.path}` : undefined;
}

/** Bytes as base64, the way binary data crosses the app API. */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** A per-client singleton, so the sidebar slot and the chat view share one store without a provider. */
export function perClient<T>(make: (client: Client) => T): (client: Client) => T {
  const instances = new WeakMap<Client, T>();
  return (client) => getOrInsert(instances, client, () => make(client));
}

/** The one image intake of the renderer: the file's bytes go to main, which validates and stores them. */
export async function addImage(client: Client, file: File): Promise<{ image: StoredImage; thumbnailUrl: string }> {
  const { image, thumbnail } = await callOrThrow(client, 'images.add', { data: toBase64(new Uint8Array(await file.arrayBuffer())) });
  return { image, thumbnailUrl: thumbnail };
}
