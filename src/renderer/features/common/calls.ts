import type { AppCallName, AppRequest, AppResponse } from '../../../shared/ipc.js';
import type { StoredImage } from '../../../shared/conversation.js';
import { getOrInsert } from '../../../shared/get-or-insert.js';
import type { Client } from '../../client/client.js';

/** Calls the app API and returns the value, or throws an Error with the message the user should see. */
export async function callOrThrow<K extends AppCallName>(client: Client, name: K, request: AppRequest<K>): Promise<AppResponse<K>> {
  const result = await client.call(name, request);
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
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
