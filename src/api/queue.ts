import { ApiError } from './openai.js';

/**
 * The server's requests on the one engine: one runs, at most `limit` wait in arrival order, and any more
 * are refused at once (429) rather than left to pile up. A waiting request whose client went away leaves
 * the line without ever reaching the engine.
 */
export class RequestQueue {
  private running = false;
  private readonly waiting: { start(): void; signal: AbortSignal }[] = [];

  constructor(private readonly limit: number) {}

  /** Requests waiting for their turn (not counting the one running). */
  get length(): number {
    return this.waiting.length;
  }

  /** Runs `job` when its turn comes; throws ApiError 429 when the line is full, `cancelled` if `signal` aborts while it waits. */
  async run<T>(job: () => Promise<T>, signal: AbortSignal): Promise<T> {
    if (this.running) {
      if (this.waiting.length >= this.limit) {
        throw new ApiError(
          429,
          'queue_full',
          `The server is busy: ${this.limit} requests are already waiting for the engine. Retry shortly.`,
        );
      }
      await this.turn(signal);
    }
    this.running = true;
    try {
      return await job();
    } finally {
      this.running = false;
      this.next();
    }
  }

  private turn(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const entry = {
        signal,
        start: () => {
          signal.removeEventListener('abort', leave);
          resolve();
        },
      };
      const leave = () => {
        this.waiting.splice(this.waiting.indexOf(entry), 1);
        reject(new ApiError(499, 'cancelled', 'The client closed the request while it waited.'));
      };
      signal.addEventListener('abort', leave, { once: true });
      this.waiting.push(entry);
    });
  }

  private next(): void {
    const entry = this.waiting.shift();
    if (entry) {
      this.running = true;
      entry.start();
    }
  }
}
