import { CodedError, type ErrorCode } from '../../shared/result.js';

/** Why a storage call failed. */
export type StorageProblem = 'not-found' | 'corrupt' | 'invalid' | 'rejected';

const IPC_CODE: Record<StorageProblem, ErrorCode> = {
  'not-found': 'not-found',
  corrupt: 'internal',
  invalid: 'invalid-request',
  rejected: 'invalid-request',
};

/** A CodedError, so the IPC boundary keeps its code and message for the renderer. */
export class StorageError extends CodedError {
  constructor(
    readonly problem: StorageProblem,
    message: string,
  ) {
    super(IPC_CODE[problem], message);
    this.name = 'StorageError';
  }
}
