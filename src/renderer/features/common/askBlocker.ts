import type { ViewProps } from '../../shell/App.js';
import { isEngineUp } from '../../shell/client-context.js';

/** Why nothing can be asked right now (in chat or compare), or undefined. */
export function askBlocker({ status, models }: ViewProps): string | undefined {
  if (!isEngineUp(status)) return status?.reason ? `The engine is ${status.state}: ${status.reason}` : 'The engine is starting…';
  if (models?.length === 0) return 'No model installed yet: add one under Models.';
  return undefined;
}
