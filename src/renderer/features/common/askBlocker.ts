import type { ViewProps } from '../../shell/App.js';

/** Why nothing can be asked right now, in chat or compare (in the user's words, with what to do), or undefined. */
export function askBlocker({ status, models }: ViewProps): string | undefined {
  switch (status?.state) {
    case 'ready':
    case 'busy':
      return models?.length === 0 ? 'No model installed yet: add one under Models.' : undefined;
    case 'crashed':
    case 'restarting':
      return 'The engine stopped unexpectedly and is restarting. Your text is kept; send it in a moment.';
    case 'stopped':
      return 'The engine is stopped: restart it in Settings. Your text is kept.';
    default:
      return 'The engine is starting…';
  }
}
