import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SettingsStore } from '../../src/main/storage/index.js';
import { DEFAULT_SETTINGS } from '../../src/shared/settings.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tp-settings-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('settings store', () => {
  it('gives defaults, remembers a save, and fills fields an older file lacks', async () => {
    const store = new SettingsStore(join(dir, 'user', 'settings.json'));
    expect(await store.load()).toEqual(DEFAULT_SETTINGS);
    expect(DEFAULT_SETTINGS).toMatchObject({ method: 'transprune-high', alpha: 0.5, compare: { left: 'none', right: 'transprune-high' } });
    await store.save({ ...DEFAULT_SETTINGS, method: 'fastv:k=3,r=0.75', sampling: { ...DEFAULT_SETTINGS.sampling, temperature: 0.7 } });
    const reopened = await new SettingsStore(store.file).load();
    expect(reopened.method).toBe('fastv:k=3,r=0.75');
    expect(reopened.sampling.temperature).toBe(0.7);
    await writeFile(store.file, JSON.stringify({ method: 'none' }));
    expect(await store.load()).toEqual({ ...DEFAULT_SETTINGS, method: 'none' });
  });

  it('keeps the last of several quick saves', async () => {
    const store = new SettingsStore(join(dir, 'settings.json'));
    await Promise.all([1, 2, 3, 4, 5].map((seed) => store.save({ ...DEFAULT_SETTINGS, sampling: { ...DEFAULT_SETTINGS.sampling, seed } })));
    expect((await store.load()).sampling.seed).toBe(5);
  });

  it('refuses invalid settings and leaves a damaged file alone', async () => {
    const store = new SettingsStore(join(dir, 'settings.json'));
    await expect(store.save({ ...DEFAULT_SETTINGS, method: 'magic' })).rejects.toThrow(/pruning method/);
    await expect(store.save({ ...DEFAULT_SETTINGS, schedule: '1/2' })).rejects.toThrow(/schedule/);
    await writeFile(store.file, '{"method": ');
    expect(await store.load()).toEqual(DEFAULT_SETTINGS);
    expect(await readFile(store.file, 'utf8')).toBe('{"method": ');
  });
});
