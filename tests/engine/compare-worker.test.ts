import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { EngineHost } from '../../src/main/engine-host.js';
import { nodeEngineSpawner } from '../../src/main/engine-process-node.js';
import type { AskRequest } from '../../src/shared/ipc-features.js';
import { parseMethod } from '../../src/shared/pruning.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

/**
 * `chat.compare` through the engine process, as the app's compare panes use it: one request, text
 * streamed per method (`branch`), each answer equal to that method's own `chat.ask`, and the stats
 * saying how many layers were computed once.
 */

const LAYERS = 8;
const root = mkdtempSync(join(tmpdir(), 'tp-compare-'));
const modelStore = join(root, 'models');
const host = new EngineHost({ spawn: nodeEngineSpawner({ modelStore, stdio: 'ignore' }) });
let request: Omit<AskRequest, 'method'>;

beforeAll(async () => {
  const checkpoint = await makeSyntheticCheckpoint(join(root, 'hf-tiny'), { layers: LAYERS, seed: 4 });
  await importCheckpoint(checkpoint.dir, modelStore, { name: 'tiny' });
  const imagePath = join(root, 'image.png');
  writeFileSync(
    imagePath,
    await sharp({ create: { width: 30, height: 20, channels: 3, background: '#2a7' } })
      .png()
      .toBuffer(),
  );
  request = {
    image: imagePath,
    turns: [{ role: 'user', text: 'What is in the picture?', image: true }],
    sampling: { temperature: 0, topP: 1, seed: 0 },
    maxTokens: 5,
    ep: 'cpu',
  };
  await host.start();
});

afterAll(async () => {
  await host.shutdown();
  rmSync(root, { recursive: true, force: true });
});

describe('chat.compare in the engine process', () => {
  it('answers each method as chat.ask does, streams text per branch, and reports the shared layers', async () => {
    const methods = [parseMethod('none'), parseMethod('transprune-high')];
    const alone: { text: string; stats: { sharedLayers?: number; visualTokensKept: number } }[] = [];
    for (const method of methods) alone.push(await host.call('chat.ask', { ...request, method }));
    const streamed = ['', ''];
    const { answers } = await host.call(
      'chat.compare',
      { ...request, methods },
      {
        onEvent: (e) => {
          const { branch, delta } = e.payload as { branch?: number; delta: string };
          if (e.event === 'text') streamed[branch!] += delta;
        },
      },
    );
    // High prunes first after layer 7 of 32; scaled to this depth as docs/pruning.md states: layers 1-2.
    const firstPrune = Math.max(1, Math.round((7 * LAYERS) / 32));
    expect(alone[1].stats.visualTokensKept).toBeLessThan(alone[0].stats.visualTokensKept); // chat.ask applied the method
    expect(answers.map((a) => a.text)).toEqual(alone.map((a) => a.text));
    expect(streamed).toEqual(alone.map((a) => a.text));
    expect(answers.map((a) => a.stats.sharedLayers)).toEqual([firstPrune, firstPrune]);
    expect(answers.map((a) => a.stats.visualTokensKept)).toEqual(alone.map((a) => a.stats.visualTokensKept));
    expect(answers[1].trace?.method.label).toBe('transprune-high');
    expect(alone[0].stats.sharedLayers).toBeUndefined();
  });

  it('refuses a compare with a single method', async () => {
    await expect(host.call('chat.compare', { ...request, methods: [parseMethod('none')] })).rejects.toMatchObject({
      code: 'invalid-request',
    });
  });
});
