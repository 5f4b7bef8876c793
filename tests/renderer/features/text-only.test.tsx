import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, expect, it, vi } from 'vitest';
import { Composer } from '../../../src/renderer/features/chat/Composer.js';

afterEach(cleanup);

const REASON = 'smollm2 is a text-only model: it answers without images';

/** A model without vision (a GGUF imported without its mmproj): no image goes in, questions still do. */
it('says the model has no vision, takes no image by drop or picker, and still sends text', async () => {
  const onAttach = vi.fn(async () => undefined);
  const onSend = vi.fn(async () => true);
  render(
    <Composer
      attachments={[]}
      busy={false}
      noImageReason={REASON}
      onAttach={onAttach}
      onRemoveAttachment={() => {}}
      onSend={onSend}
      onStop={() => {}}
    />,
  );
  const button = screen.getByRole('button', { name: 'No images: text-only model' });
  expect(button).toHaveProperty('disabled', true);
  expect(button.getAttribute('title')).toBe(REASON);

  const file = new File([new Uint8Array([137, 80, 78, 71])], 'cat.png', { type: 'image/png' });
  fireEvent.drop(screen.getByRole('form', { name: 'Ask about an image' }), { dataTransfer: { files: [file], types: ['Files'] } });
  expect(await screen.findByText(REASON)).toBeTruthy();
  expect(onAttach).not.toHaveBeenCalled();

  fireEvent.change(screen.getByRole('textbox'), { target: { value: 'What is the capital of France?' } });
  fireEvent.click(screen.getByRole('button', { name: 'Send' }));
  await vi.waitFor(() => expect(onSend).toHaveBeenCalledWith('What is the capital of France?'));
});
