import { Script, createContext } from 'node:vm';
import { CodedError } from '../../shared/result.js';

/**
 * Runs synchronous `work` for at most `ms` milliseconds of wall time. Code from a model pack (a
 * tokenizer's regular expressions, a Jinja chat template) can loop for ever in one synchronous call,
 * where no cancel message is ever read; V8 can interrupt it, and node:vm's timeout asks it to. A
 * regular expression that backtracks without end is interrupted too.
 */

export class TimeBudgetError extends CodedError {
  constructor(message: string) {
    super('timeout', message);
  }
}

const sandbox = createContext({ work: undefined as undefined | (() => unknown) });
const callWork = new Script('work()');

/** `work()`, or a TimeBudgetError with `message` once it has run `ms` milliseconds. */
export function withinBudget<T>(ms: number, message: string, work: () => T): T {
  sandbox.work = work;
  try {
    return callWork.runInContext(sandbox, { timeout: ms }) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw new TimeBudgetError(message);
    throw e;
  } finally {
    sandbox.work = undefined;
  }
}
