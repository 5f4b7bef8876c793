import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CodedError } from '../../shared/result.js';
import { mkdirPrivate, PRIVATE_FILE_MODE } from '../storage/atomicFile.js';
import type { Progress } from '../../shared/progress.js';

export const HF_ENDPOINT = 'https://huggingface.co';

/** The files of a LLaVA checkpoint the importer reads; everything else in a repo (README, .bin, ...) is skipped. */
export function isCheckpointFile(name: string): boolean {
  if (name.includes('/')) return false;
  return (
    name.endsWith('.safetensors') ||
    [
      'config.json',
      'model.safetensors.index.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'special_tokens_map.json',
      'preprocessor_config.json',
      'chat_template.json',
      'chat_template.jinja',
      'generation_config.json',
    ].includes(name)
  );
}

/**
 * Downloads a Hugging Face model repository's checkpoint files into `destDir` (the listing from
 * `/api/models/<repo>`, each file from `/<repo>/resolve/main/<file>`), streaming to disk with progress.
 * Each file lands under its name only when complete. Unreachable hosts get a message that says offline.
 */
export async function downloadCheckpoint(
  repoId: string,
  destDir: string,
  onProgress: (progress: Progress) => void,
  signal: AbortSignal,
  endpoint = HF_ENDPOINT,
): Promise<string> {
  const listing = (await request(`${endpoint}/api/models/${repoId}`, repoId, signal)) as Response;
  const { siblings = [] } = (await listing.json()) as { siblings?: { rfilename: string }[] };
  const files = siblings.map((s) => s.rfilename).filter(isCheckpointFile);
  if (!files.includes('config.json') || !files.some((f) => f.endsWith('.safetensors'))) {
    throw new CodedError('invalid-request', `${repoId} has no config.json and safetensors weights: not a checkpoint this app can import.`);
  }
  await mkdirPrivate(destDir);
  for (const [index, file] of files.entries()) {
    const response = await request(`${endpoint}/${repoId}/resolve/main/${file}`, repoId, signal);
    const size = Number(response.headers.get('content-length')) || 0;
    let received = 0;
    const report = () =>
      onProgress({
        done: index + (size ? received / size : 0),
        total: files.length,
        message: `Downloading ${file} (${index + 1} of ${files.length})`,
      });
    report();
    const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
    const counted = async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        received += chunk.length;
        report();
        yield chunk;
      }
    };
    const target = join(destDir, file);
    const partial = `${target}.part`;
    try {
      await mkdirPrivate(dirname(target));
      await pipeline(body, counted, createWriteStream(partial, { mode: PRIVATE_FILE_MODE }), { signal });
      await rename(partial, target);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
  }
  onProgress({ done: files.length, total: files.length, message: `Downloaded ${files.length} files` });
  return destDir;
}

async function request(url: string, repoId: string, signal: AbortSignal): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: 'follow' });
  } catch (err) {
    if (signal.aborted) throw err;
    throw new CodedError(
      'engine-unavailable',
      `Cannot reach ${new URL(url).host}: you seem to be offline. Import a checkpoint folder you already have instead.`,
    );
  }
  if (response.status === 401 || response.status === 403)
    throw new CodedError('forbidden', `${repoId} is gated or private; download it with your account, then import the folder.`);
  if (response.status === 404) throw new CodedError('not-found', `No model "${repoId}" on Hugging Face.`);
  if (!response.ok || !response.body)
    throw new CodedError('internal', `Hugging Face answered ${response.status} for ${new URL(url).pathname}.`);
  return response;
}
