// The "scheduler": which models are loaded, with what context length, until when. Like Ollama, the
// keep_alive clock restarts when a request finishes, a model in use never expires, and keep_alive 0
// unloads after the request. Expiry is checked lazily whenever the state is read.

import type { EmulatedModel, RunningModel } from './types.js';

interface Loaded {
  model: EmulatedModel;
  contextLength: number;
  keepAliveMs: number;
  expiresAt: number;
  active: number;
}

/** OLLAMA_CONTEXT_LENGTH default (faq: 4096), capped by the model's training context like the runner does. */
const DEFAULT_NUM_CTX = 4096;

export class Runtime {
  private readonly loaded = new Map<string, Loaded>(); // by normalized name

  constructor(private readonly defaultKeepAliveMs: number) {}

  private sweep(now = Date.now()): void {
    for (const [name, l] of this.loaded) {
      if (l.active === 0 && l.expiresAt <= now) this.loaded.delete(name);
    }
  }

  /**
   * Start a request on a model. Loads it if needed (or reloads when the context size changes) and returns whether
   * that was a cold load, for load_duration. `keepAliveMs` undefined means "the server default".
   */
  acquire(model: EmulatedModel, keepAliveMs: number | undefined, numCtx: number | undefined): { cold: boolean } {
    this.sweep();
    const ka = keepAliveMs ?? this.defaultKeepAliveMs;
    const ctx = Math.min(numCtx && numCtx > 0 ? numCtx : DEFAULT_NUM_CTX, model.contextLength);
    const current = this.loaded.get(model.name);
    // Like sched.needsReload: a different effective context (explicit or default) means a reload.
    const cold = !current || current.contextLength !== ctx;
    const entry: Loaded = current && !cold ? current : { model, contextLength: ctx, keepAliveMs: ka, expiresAt: 0, active: current?.active ?? 0 };
    entry.keepAliveMs = ka;
    entry.active += 1;
    entry.expiresAt = Date.now() + ka;
    this.loaded.set(model.name, entry);
    return { cold };
  }

  /** End a request: restart the keep_alive clock, or unload right away for keep_alive 0. */
  release(model: EmulatedModel): void {
    const entry = this.loaded.get(model.name);
    if (!entry) return;
    entry.active = Math.max(0, entry.active - 1);
    entry.expiresAt = Date.now() + entry.keepAliveMs;
    if (entry.active === 0 && entry.keepAliveMs <= 0) this.loaded.delete(model.name);
  }

  /** Explicit unload (empty prompt + keep_alive 0, or delete): now, or when the running requests finish. */
  unload(name: string): void {
    const entry = this.loaded.get(name);
    if (!entry) return;
    if (entry.active === 0) this.loaded.delete(name);
    else {
      entry.keepAliveMs = 0;
      entry.expiresAt = Date.now();
    }
  }

  isLoaded(name: string): boolean {
    this.sweep();
    return this.loaded.has(name);
  }

  /** Longest remaining time first, as /api/ps sorts. */
  running(): Array<RunningModel & { model: EmulatedModel }> {
    this.sweep();
    return [...this.loaded.values()]
      .sort((a, b) => Math.floor(b.expiresAt / 1000) - Math.floor(a.expiresAt / 1000))
      .map((l) => ({
        name: l.model.name,
        model: l.model,
        expiresAt: new Date(l.expiresAt),
        sizeVram: l.model.size,
        contextLength: l.contextLength,
      }));
  }

  clear(): void {
    this.loaded.clear();
  }
}
