/** Why a storage call failed; handlers turn the code into the IPC error envelope. */
export type StorageErrorCode = 'not-found' | 'corrupt' | 'invalid' | 'rejected';

export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StorageError';
  }
}
