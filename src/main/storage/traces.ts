import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Id } from '../../shared/conversation.js';
import type { Trace } from '../../shared/trace.js';
import { readTrace, traceToJson } from '../../shared/trace-files.js';
import { mkdirPrivate, writeFileAtomic } from './atomicFile.js';
import { StorageError } from './errors.js';

/** Pruning traces of answered messages, one JSON file each (the trace schema itself), referenced by id. */
export class TraceStore {
  constructor(readonly dir: string) {}

  async save(trace: Trace): Promise<string> {
    const id = randomUUID();
    await mkdirPrivate(this.dir);
    await writeFileAtomic(this.file(id), traceToJson(trace));
    return id;
  }

  async get(id: string): Promise<Trace> {
    let text: string;
    try {
      text = await readFile(this.file(id), 'utf8');
    } catch {
      throw new StorageError('not-found', `no trace ${id}`);
    }
    try {
      return readTrace(text);
    } catch (err) {
      throw new StorageError('corrupt', (err as Error).message);
    }
  }

  private file(id: string): string {
    if (!Id.safeParse(id).success) throw new StorageError('invalid', `invalid trace id: ${JSON.stringify(id)}`);
    return join(this.dir, `${id}.json`);
  }
}
