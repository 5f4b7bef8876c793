/** A one-line progress bar on stderr, redrawn in place on a terminal and printed sparsely otherwise (logs, CI). */
export class ProgressBar {
  private readonly started = Date.now();
  private lastLogged = -1;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number, note = ''): void {
    const fraction = this.total > 0 ? done / this.total : 1;
    const elapsed = (Date.now() - this.started) / 1000;
    const eta = done > 0 ? (elapsed / done) * (this.total - done) : 0;
    const text = `${this.label} ${bar(fraction)} ${done}/${this.total} ${elapsed.toFixed(0)}s eta ${eta.toFixed(0)}s ${note}`;
    if (this.stream.isTTY) {
      this.stream.write(`\r${text.slice(0, (this.stream.columns ?? 100) - 1).padEnd(Math.min(text.length, 99))}`);
      if (done >= this.total) this.stream.write('\n');
      return;
    }
    const decile = Math.floor(fraction * 10);
    if (decile !== this.lastLogged || done >= this.total) {
      this.lastLogged = decile;
      this.stream.write(`${text}\n`);
    }
  }
}

function bar(fraction: number, width = 24): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}
