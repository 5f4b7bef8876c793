import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// Fault injection: make the next rename (the commit step of an atomic write) fail like a full disk would.
const fault = vi.hoisted(() => ({ failNextRename: false }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    rename: async (from: string, to: string) => {
      if (fault.failNextRename) {
        fault.failNextRename = false;
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }
      return real.rename(from, to);
    },
  };
});

const { writeFileAtomic } = await import('../../src/main/storage/atomicFile.js');
const { ConversationStore } = await import('../../src/main/storage/conversations.js');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tp-atomic-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('atomic writes', () => {
  it('replaces the whole file and leaves no temp file', async () => {
    const file = join(dir, 'a.json');
    await writeFile(file, 'old');
    await writeFileAtomic(file, 'new contents');
    expect(await readFile(file, 'utf8')).toBe('new contents');
    expect(await readdir(dir)).toEqual(['a.json']);
  });

  it('a failed write leaves the old file intact and cleans up', async () => {
    const file = join(dir, 'a.json');
    await writeFile(file, 'old');
    fault.failNextRename = true;
    await expect(writeFileAtomic(file, 'new')).rejects.toThrow(/ENOSPC/);
    expect(await readFile(file, 'utf8')).toBe('old');
    expect(await readdir(dir)).toEqual(['a.json']);
  });

  it('a conversation update that fails to write loses nothing already saved', async () => {
    const store = new ConversationStore(dir);
    const c = await store.create('Kept');
    await store.addUserMessage(c.id, 'first');
    fault.failNextRename = true;
    await expect(store.addUserMessage(c.id, 'second')).rejects.toThrow(/ENOSPC/);
    const reopened = await new ConversationStore(dir).get(c.id);
    expect(reopened.messages.map((m) => (m.role === 'user' ? m.text : ''))).toEqual(['first']);
    // The store keeps working after the failure.
    await store.addUserMessage(c.id, 'third');
    expect((await store.get(c.id)).messages).toHaveLength(2);
  });
});
