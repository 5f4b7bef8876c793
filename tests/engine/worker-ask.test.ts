import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preprocessClip } from '../../src/engine/image/preprocess.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { LoadedModel } from '../../src/engine/runtime/model.js';
import { encodeChat } from '../../src/engine/text/chat.js';
import { EngineHost } from '../../src/main/engine-host.js';
import { nodeEngineSpawner } from '../../src/main/engine-process-node.js';
import type { AskRequest } from '../../src/shared/ipc-features.js';
import type { ProviderRequest } from '../../src/shared/providers.js';
import { loadReferenceModel, referenceGenerate } from '../helpers/reference.js';
import { makeSyntheticCheckpoint, type SyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

/**
 * `chat.ask` through the engine process: the answer streamed as `text` events matches the float64
 * reference's greedy tokens, and a cancel stops it between decode steps.
 */

const root = mkdtempSync(join(tmpdir(), 'tp-ask-'));
const modelStore = join(root, 'models');
const host = new EngineHost({ spawn: nodeEngineSpawner({ modelStore, stdio: 'ignore' }) });
let checkpoint: SyntheticCheckpoint;
let request: AskRequest;

beforeAll(async () => {
  checkpoint = await makeSyntheticCheckpoint(join(root, 'hf-tiny'));
  await importCheckpoint(checkpoint.dir, modelStore, { name: 'tiny' });
  const size = checkpoint.shape.imageSize;
  const rgb = Buffer.alloc(size * size * 3, 0).map((_, i) => (i * 29 + 7) % 256);
  const imagePath = join(root, 'image.png');
  writeFileSync(
    imagePath,
    await sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
      .png()
      .toBuffer(),
  );
  request = {
    image: imagePath,
    turns: [{ role: 'user', text: 'What is in the picture?', image: true }],
    method: { llm: { kind: 'none' } },
    sampling: { temperature: 0, topP: 1, seed: 0 },
    maxTokens: 5,
    ep: 'cpu',
  };
  await host.start();
});

afterAll(() => host.shutdown());

describe('chat.ask in the engine process', () => {
  it('streams the answer the reference computes for the first installed model', async () => {
    const deltas: string[] = [];
    const result = await host.call('chat.ask', request, {
      onEvent: (e) => e.event === 'text' && deltas.push((e.payload as { delta: string }).delta),
    });

    const [pack] = await host.call('models.list', {});
    const model = await LoadedModel.load(pack.path, { ep: 'cpu' });
    const { ids } = encodeChat(model.tokenizer, request.turns!, {
      template: model.chatTemplate,
      imageTokenId: model.config.imageTokenIndex,
    });
    const { pixelValues } = await preprocessClip(new Uint8Array(await sharp(request.image).toBuffer()), model.clip);
    const expected = referenceGenerate(loadReferenceModel(checkpoint.dir), {
      inputIds: ids,
      pixelValues,
      maxNewTokens: 5,
      eosTokenId: checkpoint.tokens.eos,
    }).tokens;
    const expectedText = model.tokenizer.decode(expected.filter((t) => t !== checkpoint.tokens.eos));
    await model.dispose();

    expect(result.text).toBe(expectedText);
    expect(deltas.join('')).toBe(result.text);
    expect(result.stats).toMatchObject({
      executionProvider: 'cpu',
      visualTokensTotal: checkpoint.numVisualTokens,
      visualTokensKept: checkpoint.numVisualTokens,
    });
    expect(result.trace).toBeDefined();
  });

  it('answers cancelled when aborted mid-answer', async () => {
    const controller = new AbortController();
    const call = host.call(
      'chat.ask',
      { ...request, maxTokens: 200 },
      { signal: controller.signal, onEvent: (e) => e.event === 'text' && controller.abort() },
    );
    await expect(call).rejects.toMatchObject({ code: 'cancelled' });
    expect(host.status.state).toBe('ready');
  });

  it('refuses an unknown provider before loading anything', async () => {
    await expect(host.call('chat.ask', { ...request, ep: 'quantum' as ProviderRequest })).rejects.toMatchObject({
      code: 'invalid-request',
    });
  });
});
