/** The answers still running, each with the controller that aborts it, by id (a conversation or a compare run). */
export class RunningAnswers {
  private readonly controllers = new Map<string, AbortController>();

  start(id: string): AbortController {
    const controller = new AbortController();
    this.controllers.set(id, controller);
    return controller;
  }

  has(id: string): boolean {
    return this.controllers.has(id);
  }

  /** Forgets the run, unless a newer one has started under the same id. */
  finish(id: string, controller: AbortController): void {
    if (this.controllers.get(id) === controller) this.controllers.delete(id);
  }

  /** Aborts the run; false when nothing runs under `id`. */
  stop(id: string): boolean {
    const controller = this.controllers.get(id);
    controller?.abort();
    return controller !== undefined;
  }

  /** Aborts every run (quit): each is saved as interrupted. */
  stopAll(): void {
    for (const controller of this.controllers.values()) controller.abort();
  }
}
