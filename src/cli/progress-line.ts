/**
 * Progress lines on stderr are redrawn in place (\r) and left open until their work is done; when an
 * error cuts the work short, its message must not be glued to the half-drawn line. The CLI follows
 * what goes to stderr (its own lines, the import's, the engine's ProgressBar) to know whether a line is open.
 */

let lineOpen = false;

/** Installed once by the CLI's entry point. */
export function followStderrLines(): void {
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (text.length > 0) lineOpen = !text.endsWith('\n');
    return write(chunk, ...rest);
  }) as typeof process.stderr.write;
}

/** Ends a line left open, so what prints next starts on a line of its own. */
export function endOpenLine(): void {
  if (lineOpen) process.stderr.write('\n');
}

/** Redraws the progress line; `done` ends it. */
export function progressLine(text: string, done: boolean): void {
  process.stderr.write(`\r${text}\x1b[K${done ? '\n' : ''}`);
}
