import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for huggingface.co as the app uses it: `/api/models/<repo>?blobs=true` lists each file with
 * its size and hash (LFS files: sha256; small ones: git's blob sha1), `/<repo>/resolve/main/<file>` serves it
 * with Range requests answered 206. Faults on demand: a connection cut after some bytes (once per file), bytes
 * that do not match the listing, a stall until the client gives up. Every request is recorded.
 */
export interface HubFaults {
  /** Cut the connection after this many bytes of the file's first response. */
  cutAfter?: Record<string, number>;
  /** Serve these files with one byte changed (the listing keeps the true hash). */
  corrupt?: string[];
  /** Send this many bytes of the file, then hold the connection open (for cancel). */
  stallAfter?: Record<string, number>;
}

export interface StandInHub {
  url: string;
  requests: { path: string; range?: string }[];
  close(): Promise<void>;
}

const isLfs = (name: string) => name.endsWith('.safetensors') || name.endsWith('.gguf');

export async function startStandInHub(repos: Record<string, Record<string, Buffer>>, faults: HubFaults = {}): Promise<StandInHub> {
  const requests: StandInHub['requests'] = [];
  const cut = new Set<string>();
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '').split('?')[0]);
    requests.push({ path, range: req.headers.range });
    for (const [repoId, files] of Object.entries(repos)) {
      if (path === `/api/models/${repoId}`) return void res.end(JSON.stringify(listing(repoId, files)));
      const prefix = `/${repoId}/resolve/main/`;
      if (path.startsWith(prefix) && files[path.slice(prefix.length)])
        return serveFile(req, res, path.slice(prefix.length), files[path.slice(prefix.length)]);
    }
    res.writeHead(404).end();
  });

  function serveFile(req: IncomingMessage, res: ServerResponse, name: string, content: Buffer) {
    const body = faults.corrupt?.includes(name) ? Buffer.from(content) : content;
    if (body !== content) body[body.length >> 1] ^= 0xff;
    const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    if (from)
      res.writeHead(206, { 'content-length': body.length - from, 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` });
    else res.writeHead(200, { 'content-length': body.length });
    const rest = body.subarray(from);
    const cutAt = faults.cutAfter?.[name];
    if (cutAt !== undefined && !cut.has(name)) {
      cut.add(name);
      return void res.write(rest.subarray(0, cutAt), () => res.destroy());
    }
    const stallAt = faults.stallAfter?.[name];
    if (stallAt !== undefined) return void res.write(rest.subarray(0, stallAt));
    res.end(rest);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The listing's shape with `?blobs=true`, plus a README the app must skip. */
function listing(repoId: string, files: Record<string, Buffer>) {
  const siblings = Object.entries(files).map(([rfilename, content]) => {
    const blobId = createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
    if (!isLfs(rfilename)) return { rfilename, size: content.length, blobId };
    const sha256 = createHash('sha256').update(content).digest('hex');
    return { rfilename, size: content.length, blobId, lfs: { sha256, size: content.length, pointerSize: 134 } };
  });
  return { id: repoId, siblings: [...siblings, { rfilename: 'README.md', size: 5, blobId: '0'.repeat(40) }] };
}
