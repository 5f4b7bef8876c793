import type { ModelSessions, RunnableSession } from '../../engine/runtime/graphs.js';

/**
 * Wraps a model's sessions so every `run` is timed: the benchmark compares the time inside
 * session.run with a whole decode step to find the share spent in our own JavaScript.
 */
export class RunTimer {
  ms = 0;
  calls = 0;

  wrap(session: RunnableSession): RunnableSession {
    return {
      run: async (...args: Parameters<RunnableSession['run']>) => {
        const start = performance.now();
        try {
          return await (session.run as (...a: typeof args) => ReturnType<RunnableSession['run']>)(...args);
        } finally {
          this.ms += performance.now() - start;
          this.calls++;
        }
      },
    } as RunnableSession;
  }

  model(model: ModelSessions): ModelSessions {
    return {
      dims: model.dims,
      embed: this.wrap(model.embed),
      vision: model.vision && this.wrap(model.vision),
      layers: model.layers.map((s) => this.wrap(s)),
      head: this.wrap(model.head),
      probe: async (layer) => this.wrap(await model.probe(layer)),
    };
  }

  reset(): void {
    this.ms = 0;
    this.calls = 0;
  }
}
