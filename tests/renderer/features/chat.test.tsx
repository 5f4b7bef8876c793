import { z } from 'zod';
import { errorFrom } from '../../../src/shared/result.js';
import { userMessage } from '../../../src/renderer/features/common/calls.js';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AnswerStats, AssistantMessage, Message, StoredImage } from '../../../src/shared/conversation.js';
import { Composer } from '../../../src/renderer/features/chat/Composer.js';
import { IMAGE_ACCEPT } from '../../../src/shared/images.js';
import { ConversationList } from '../../../src/renderer/features/chat/ConversationList.js';
import { MessageList } from '../../../src/renderer/features/chat/MessageList.js';
import { statItems } from '../../../src/renderer/features/chat/StatsRow.js';
import { WhatModelSees } from '../../../src/renderer/features/chat/WhatModelSees.js';

afterEach(cleanup);

const stats: AnswerStats = {
  timeToFirstTokenMs: 1234.4,
  imageEncodeMs: 310,
  prefillMs: 640.6,
  decodeTokensPerSec: 23.46,
  generatedTokens: 40,
  visualTokensKept: 72,
  visualTokensTotal: 576,
  tflops: 1.557,
  tflopsUnpruned: 3.817,
  executionProvider: 'cpu',
};
const image: StoredImage = { id: 'a'.repeat(64), format: 'png', width: 1280, height: 720, bytes: 1000 };

function conversation(status: AssistantMessage['versions'][number]['status'] = 'done'): Message[] {
  return [
    { id: 'u1', role: 'user', text: 'What is in the picture?', images: [image.id], createdAt: 1 },
    {
      id: 'a1',
      role: 'assistant',
      current: 1,
      versions: [
        { id: 'v1', text: 'A cat.', status: 'done', createdAt: 2, method: 'none' },
        { id: 'v2', text: 'A cat on a mat.', status, createdAt: 3, method: 'transprune-high', stats, traceId: 't2' },
      ],
    },
  ];
}

describe('stats row', () => {
  it('formats every number the way the row shows it', () => {
    expect(statItems(stats).map((s) => `${s.label}: ${s.value}`)).toEqual([
      'first token: 1.23 s',
      'prefill: 641 ms',
      'decode: 23.5 tok/s',
      'visual tokens: 72 of 576',
      'compute: 1.56 TFLOPs (40.8%)',
      'on: cpu',
    ]);
    expect(statItems(stats)[0].hint).toContain('310 ms of image encoding');
    expect(statItems({ ...stats, sharedLayers: 6 }).at(-1)).toMatchObject({ label: 'shared', value: 'layers 1–6' });
    // Tiny test models compute millions, not trillions.
    expect(statItems({ ...stats, tflops: 0.0000431, tflopsUnpruned: 0.0000714 })[4].value).toBe('43.1 MFLOPs (60.4%)');
    expect(statItems({ ...stats, tflops: 0.0123, tflopsUnpruned: 0.0246 })[4].value).toBe('12.3 GFLOPs (50%)');
    // One unit rule everywhere (src/shared/compute.ts): half a TFLOP is 500 GFLOPs; a text-only answer has no visual compute.
    expect(statItems({ ...stats, tflops: 0.5, tflopsUnpruned: 1 })[4].value).toBe('500 GFLOPs (50%)');
    expect(statItems({ ...stats, visualTokensKept: 0, visualTokensTotal: 0, tflops: 0, tflopsUnpruned: 0 })[4].value).toBe(
      'none (text only)',
    );
  });
});

describe('conversation list', () => {
  const items = [
    { id: 'c1', title: 'Cats', createdAt: 1, updatedAt: 3, messageCount: 2 },
    { id: 'c2', title: 'Receipts', createdAt: 1, updatedAt: 2, messageCount: 0 },
  ];
  const handlers = () => ({ onQueryChange: vi.fn(), onSelect: vi.fn(), onNew: vi.fn(), onRename: vi.fn(), onDelete: vi.fn() });

  it('selects, creates, renames with the keyboard and deletes after confirmation', () => {
    const h = handlers();
    render(<ConversationList conversations={items} activeId="c1" query="" {...h} />);
    expect(screen.getByRole('button', { name: 'Cats' }).getAttribute('aria-current')).toBe('page');
    fireEvent.click(screen.getByRole('button', { name: 'Receipts' }));
    expect(h.onSelect).toHaveBeenCalledWith('c2');
    fireEvent.click(screen.getByRole('button', { name: 'New chat' }));
    expect(h.onNew).toHaveBeenCalled();

    fireEvent.click(screen.getByRole('button', { name: 'Rename Cats' }));
    const input = screen.getByLabelText('New title');
    fireEvent.change(input, { target: { value: '  Cats on mats ' } });
    fireEvent.submit(input);
    expect(h.onRename).toHaveBeenCalledWith('c1', 'Cats on mats');

    fireEvent.click(screen.getByRole('button', { name: 'Delete Receipts' }));
    expect(h.onDelete).not.toHaveBeenCalled();
    fireEvent.click(screen.getByRole('button', { name: 'Confirm delete Receipts' }));
    expect(h.onDelete).toHaveBeenCalledWith('c2');
  });

  it('escape cancels a rename; search reports the query; empty states explain themselves', () => {
    const h = handlers();
    const { rerender } = render(<ConversationList conversations={items} query="" {...h} />);
    fireEvent.click(screen.getByRole('button', { name: 'Rename Cats' }));
    fireEvent.keyDown(screen.getByLabelText('New title'), { key: 'Escape' });
    expect(h.onRename).not.toHaveBeenCalled();
    expect(screen.getByRole('button', { name: 'Cats' })).toBeTruthy();
    fireEvent.change(screen.getByRole('searchbox'), { target: { value: 'zebra' } });
    expect(h.onQueryChange).toHaveBeenCalledWith('zebra');
    rerender(<ConversationList conversations={[]} query="zebra" {...h} />);
    expect(screen.getByText('No conversation mentions “zebra”.')).toBeTruthy();
  });
});

describe('message list', () => {
  const base = { thumbnailUrl: (id: string) => `thumb://${id}`, onRegenerate: vi.fn(), onSelectVersion: vi.fn() };

  it('shows the current version with its stats, and switches, copies, regenerates and inspects', async () => {
    const copy = vi.fn(async () => {});
    const onInspect = vi.fn();
    const onSelectVersion = vi.fn();
    const onRegenerate = vi.fn();
    render(
      <MessageList
        {...base}
        messages={conversation()}
        copy={copy}
        onInspect={onInspect}
        onSelectVersion={onSelectVersion}
        onRegenerate={onRegenerate}
      />,
    );
    expect(screen.getByTestId('answer-text').textContent).toBe('A cat on a mat.');
    expect(screen.getByRole('group', { name: 'Answer versions' }).textContent).toContain('2 / 2 · TransPrune High');
    expect(within(screen.getByLabelText('Answer statistics')).getByText('72 of 576')).toBeTruthy();
    expect((screen.getByRole('button', { name: 'Next version' }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole('button', { name: 'Previous version' }));
    expect(onSelectVersion).toHaveBeenCalledWith('a1', 0);
    fireEvent.click(screen.getByRole('button', { name: 'Copy' }));
    expect(copy).toHaveBeenCalledWith('A cat on a mat.');
    expect(await screen.findByRole('button', { name: 'Copied' })).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Regenerate' }));
    expect(onRegenerate).toHaveBeenCalledWith('a1');
    fireEvent.click(screen.getByRole('button', { name: 'Inspect pruning' }));
    expect(onInspect).toHaveBeenCalledWith('a1', 't2');
    expect(screen.getByRole('img', { name: 'Attached image' }).getAttribute('src')).toBe(`thumb://${image.id}`);
  });

  it('marks a streaming answer busy and locks its actions; an interrupted one says so', () => {
    const { rerender } = render(<MessageList {...base} messages={conversation('streaming')} />);
    const item = screen.getByTestId('answer-text').closest('li')!;
    expect(item.getAttribute('aria-busy')).toBe('true');
    expect((screen.getByRole('button', { name: 'Regenerate' }) as HTMLButtonElement).disabled).toBe(true);
    rerender(<MessageList {...base} messages={conversation('interrupted')} />);
    expect(screen.getByText(/Stopped before the end/)).toBeTruthy();
  });

  it('has an empty state', () => {
    render(<MessageList {...base} messages={[]} />);
    expect(screen.getByText(/Ask a question, or drop, paste or pick an image/)).toBeTruthy();
  });
});

describe('composer', () => {
  const props = () => ({
    attachments: [],
    busy: false,
    onAttach: vi.fn(async () => {}),
    onRemoveAttachment: vi.fn(),
    onSend: vi.fn(async () => true),
    onStop: vi.fn(),
  });
  const png = () => new File([new Uint8Array([0x89, 0x50, 0x4e, 0x47])], 'a.png', { type: 'image/png' });

  it('sends on Enter, keeps Shift+Enter for new lines, and clears once sent', async () => {
    const p = props();
    render(<Composer {...p} />);
    const box = screen.getByLabelText('Question') as HTMLTextAreaElement;
    fireEvent.change(box, { target: { value: ' What colour? ' } });
    fireEvent.keyDown(box, { key: 'Enter', shiftKey: true });
    expect(p.onSend).not.toHaveBeenCalled();
    fireEvent.keyDown(box, { key: 'Enter' });
    expect(p.onSend).toHaveBeenCalledWith('What colour?');
    await waitFor(() => expect(box.value).toBe(''));
  });

  it('keeps what was typed when the question is not sent, and sends text without an image', async () => {
    const p = { ...props(), onSend: vi.fn(async () => false) };
    render(<Composer {...p} />);
    const box = screen.getByLabelText('Question') as HTMLTextAreaElement;
    fireEvent.change(box, { target: { value: 'No picture here' } });
    expect((screen.getByRole('button', { name: 'Send' }) as HTMLButtonElement).disabled).toBe(false);
    fireEvent.click(screen.getByRole('button', { name: 'Send' }));
    await waitFor(() => expect(p.onSend).toHaveBeenCalledWith('No picture here'));
    await waitFor(() => expect((screen.getByRole('button', { name: 'Send' }) as HTMLButtonElement).disabled).toBe(false));
    expect(box.value).toBe('No picture here');
  });

  it('takes one image per question and says so when a second replaces the first', async () => {
    const p = props();
    const { rerender } = render(<Composer {...p} />);
    fireEvent.drop(screen.getByTestId('composer'), { dataTransfer: { files: [png(), png()] } });
    await waitFor(() => expect(p.onAttach).toHaveBeenCalledTimes(1));
    expect(screen.getByTestId('composer-note').textContent).toBe(
      'LLaVA-1.5 answers about one image per question: attached the first of the 2.',
    );
    rerender(<Composer {...p} attachments={[{ image, thumbnailUrl: 'thumb://x' }]} />);
    fireEvent.drop(screen.getByTestId('composer'), { dataTransfer: { files: [png()] } });
    await waitFor(() =>
      expect(screen.getByTestId('composer-note').textContent).toBe(
        'LLaVA-1.5 answers about one image per question: replaced the earlier image.',
      ),
    );
  });

  it('Esc stops a streaming answer from anywhere, unless something else took the key', () => {
    const p = props();
    render(<Composer {...p} busy />);
    fireEvent.keyDown(window, { key: 'Escape' });
    expect(p.onStop).toHaveBeenCalledTimes(1);
    const handled = new KeyboardEvent('keydown', { key: 'Escape', cancelable: true });
    handled.preventDefault();
    window.dispatchEvent(handled);
    expect(p.onStop).toHaveBeenCalledTimes(1);
  });

  it('drop, paste and the picker all go through onAttach', async () => {
    const p = props();
    render(<Composer {...p} />);
    const file = png();
    fireEvent.drop(screen.getByTestId('composer'), { dataTransfer: { files: [file] } });
    fireEvent.paste(screen.getByLabelText('Question'), { clipboardData: { files: [file] } });
    fireEvent.change(screen.getByLabelText('Choose an image'), { target: { files: [file] } });
    await waitFor(() => expect(p.onAttach).toHaveBeenCalledTimes(3));
    for (const call of p.onAttach.mock.calls as unknown as File[][]) expect(call[0]).toBe(file);
  });

  it('keeps the question unsent while an image was refused, until it is removed or replaced', async () => {
    let refuse = true;
    const p = {
      ...props(),
      onAttach: vi.fn(async () => (refuse ? Promise.reject(new Error('This file is not an image the app reads.')) : undefined)),
    };
    render(<Composer {...p} />);
    fireEvent.change(screen.getByLabelText('Question'), { target: { value: 'What is in it?' } });
    fireEvent.drop(screen.getByTestId('composer'), { dataTransfer: { files: [new File(['%PDF'], 'scan.pdf')] } });
    expect((await screen.findByRole('alert')).textContent).toMatch(
      /^scan\.pdf was not attached: This file is not an image the app reads\./,
    );
    const send = screen.getByRole('button', { name: 'Send' }) as HTMLButtonElement;
    expect(send.disabled).toBe(true);
    fireEvent.keyDown(screen.getByLabelText('Question'), { key: 'Enter' });
    expect(p.onSend).not.toHaveBeenCalled();
    // Replaced by an image that is accepted: the question may go.
    refuse = false;
    fireEvent.drop(screen.getByTestId('composer'), { dataTransfer: { files: [png()] } });
    await waitFor(() => expect(send.disabled).toBe(false));
    expect(screen.queryByRole('alert')).toBeNull();
    // Refused again, then removed: the question goes as it is.
    refuse = true;
    fireEvent.drop(screen.getByTestId('composer'), { dataTransfer: { files: [png()] } });
    await waitFor(() => expect(send.disabled).toBe(true));
    fireEvent.click(within(screen.getByRole('alert')).getByRole('button', { name: 'Remove' }));
    fireEvent.click(send);
    expect(p.onSend).toHaveBeenCalledWith('What is in it?');
    expect((screen.getByLabelText('Question') as HTMLTextAreaElement).value).toBe('What is in it?');
  });

  it('offers in the picker every format the app reads', () => {
    render(<Composer {...props()} />);
    expect(screen.getByLabelText('Choose an image').getAttribute('accept')).toBe(IMAGE_ACCEPT);
    for (const type of ['image/gif', 'image/tiff', 'image/avif', 'image/heif']) expect(IMAGE_ACCEPT.split(',')).toContain(type);
  });

  it('shows thumbnails with remove, and Stop while busy', () => {
    const p = props();
    const { rerender } = render(<Composer {...p} attachments={[{ image, thumbnailUrl: 'thumb://x' }]} />);
    expect(screen.getByRole('img', { name: 'Attached 1280×720 PNG' })).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Remove image' }));
    expect(p.onRemoveAttachment).toHaveBeenCalledWith(image.id);
    rerender(<Composer {...p} busy />);
    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    expect(p.onStop).toHaveBeenCalled();
    expect(screen.queryByRole('button', { name: 'Send' })).toBeNull();
  });
});

describe('what the model sees', () => {
  it('explains resolution, scale, tokens and policy', () => {
    render(<WhatModelSees image={image} model={{ resolution: 336, patchSize: 14, visualTokens: 576, resizePolicy: 'pad' }} />);
    const note = screen.getByRole('note', { hidden: true });
    expect(note.textContent).toContain('1280×720');
    expect(note.textContent).toContain('336×336 (padded to a square');
    expect(note.textContent).toContain('reduced to 26%');
    expect(note.textContent).toContain('576 (24×24 patches of 14 px)');
  });
});

describe('error messages', () => {
  it("say what happened in the user's words instead of signals or a schema dump", () => {
    const dump = errorFrom(
      (() => {
        try {
          return z.object({ text: z.string().max(3) }).parse({ text: 'too long' });
        } catch (e) {
          return e;
        }
      })(),
    ).error;
    expect(dump.code).toBe('invalid-request');
    expect(userMessage(dump)).toBe('That was not accepted: Too big: expected string to have <=3 characters (text).');
    expect(userMessage({ code: 'engine-crashed', message: 'the engine stopped during chat.ask: killed by SIGKILL' })).toBe(
      'The engine stopped unexpectedly and was restarted. Your text is kept; try again.',
    );
    expect(userMessage({ code: 'not-found', message: 'No model "x" on Hugging Face.' })).toBe('No model "x" on Hugging Face.');
  });
});
