import type { ProgressResponse } from 'ollama';
import { ErrorCode, GatewayError, isGatewayError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import type { OllamaUpstream } from '../ollama/upstream.js';
import type { GatewayPubSub } from '../platform/pubsub.js';
import type { ModelCatalog } from './catalog.js';
import type { ModelEvent, PullProgress } from './events.js';
import type { OllamaInventory } from '../ollama/inventory.js';
import { requireModelName } from '../ollama/model-names.js';

export interface PullManagerDeps {
  /** URL of the Ollama host this manager pulls onto. */
  host: string;
  upstream: OllamaUpstream;
  inventory: OllamaInventory;
  catalog: ModelCatalog;
  pubsub: GatewayPubSub;
  publish(event: ModelEvent): void;
  log: Logger;
}

/** A pull in progress: one upstream `/api/pull` shared by everyone who asked for the model. */
export interface ActivePull {
  model: string;
  host: string;
  latest: PullProgress | null;
  /** Settles once Ollama got past "pulling manifest" (the model exists), or with the pull's error. */
  manifest: Promise<void>;
  /** Settles with the last message (success) or the pull's error. */
  finished: Promise<PullProgress>;
}

interface PullState extends ActivePull {
  controller: AbortController;
}

/** Rebuilds the typed error carried (JSON-safe) by a failed pull's last message. */
export const pullError = (p: PullProgress): GatewayError =>
  new GatewayError((p.error?.code ?? ErrorCode.UPSTREAM_ERROR) as ErrorCode, p.error?.message ?? 'The pull failed.', p.error?.details ?? {});

const percentOf = (completed: number | null, total: number | null): number | null =>
  total ? Math.min(100, Math.round((completed ?? 0) * 10_000 / total) / 100) : null;

/**
 * Runs model pulls in the background and relays their progress on the `models:pull` topic. A pull
 * asked for while the same model is already being pulled joins it: one upstream request, every
 * subscriber sees the same messages. Pulls outlive the request that started them.
 */
export class PullManager {
  private readonly pulls = new Map<string, PullState>();
  private seq = 0;

  constructor(private readonly deps: PullManagerDeps) {}

  /** The canonical name for a pull: a catalogue alias resolves to its model. */
  async resolve(requested: string): Promise<string> {
    const match = await this.deps.catalog.find(requested);
    return match ? match.entry.name : requireModelName(requested);
  }

  /**
   * Starts (or joins) the pull of a name or alias and waits until Ollama has found the model's
   * manifest, so an unknown model fails here with MODEL_NOT_FOUND; the download goes on in the
   * background.
   */
  async begin(requested: string): Promise<{ model: string; joined: boolean; progress: PullProgress | null }> {
    const model = await this.resolve(requested);
    const { pull, joined } = this.start(model);
    await pull.manifest;
    return { model, joined, progress: pull.latest };
  }

  /** `watch` for a name or alias. */
  async *follow(requested: string): AsyncGenerator<PullProgress> {
    yield* this.watch(await this.resolve(requested));
  }

  /** Starts pulling a model (canonical name), or joins the pull already running. */
  start(model: string): { pull: ActivePull; joined: boolean } {
    const running = this.pulls.get(model);
    if (running) return { pull: running, joined: true };
    let manifestDone!: () => void;
    let manifestFailed!: (e: unknown) => void;
    const manifest = new Promise<void>((resolve, reject) => {
      manifestDone = resolve;
      manifestFailed = reject;
    });
    const state: PullState = { model, host: this.deps.host, latest: null, manifest, finished: Promise.resolve(null as never), controller: new AbortController() };
    manifest.catch(() => {});
    state.finished = this.run(state, manifestDone, manifestFailed);
    state.finished.catch(() => {});
    this.pulls.set(model, state);
    return { pull: state, joined: false };
  }

  /**
   * Progress of a model's pull for one subscriber: the latest message first (when joining), then
   * every new one, ending after success; a failed pull ends with its typed error. Starts the pull
   * when none is running.
   */
  async *watch(model: string): AsyncGenerator<PullProgress> {
    const source = this.deps.pubsub.subscribe('models:pull', this.topic(model));
    // The first next() registers the listener synchronously, before the pull is joined or started.
    let pending = source.next();
    try {
      const { pull } = this.start(model);
      let seen = 0;
      const deliver = function* (p: PullProgress): Generator<PullProgress, boolean> {
        if (p.seq <= seen) return false;
        seen = p.seq;
        if (p.error) throw pullError(p);
        yield p;
        return p.done;
      };
      if (pull.latest && (yield* deliver(pull.latest))) return;
      for (;;) {
        const next = await pending;
        if (next.done) return;
        if (yield* deliver(next.value as PullProgress)) return;
        pending = source.next();
      }
    } finally {
      await source.return();
    }
  }

  /** Aborts every running pull (gateway shutdown). */
  stop(): void {
    for (const p of this.pulls.values()) p.controller.abort();
  }

  /** Pub/sub key of a model's pull on this host. */
  private topic(model: string): string {
    return `${this.deps.host} ${model}`;
  }

  private emit(state: PullState, p: Omit<PullProgress, 'seq' | 'model' | 'host'>): PullProgress {
    const progress = { ...p, model: state.model, host: this.deps.host, seq: ++this.seq };
    state.latest = progress;
    this.deps.pubsub.publish('models:pull', this.topic(state.model), progress);
    return progress;
  }

  private async run(state: PullState, manifestDone: () => void, manifestFailed: (e: unknown) => void): Promise<PullProgress> {
    const { upstream, inventory, log } = this.deps;
    // Let start() return (and its caller subscribe) before the first message goes out.
    await Promise.resolve();
    try {
      let last: ProgressResponse | undefined;
      for await (const part of upstream.pullStream(state.model, state.controller.signal)) {
        last = part;
        if (part.status !== 'pulling manifest') manifestDone();
        if (part.status === 'success') break;
        const completed = typeof part.completed === 'number' ? part.completed : null;
        const total = typeof part.total === 'number' ? part.total : null;
        this.emit(state, { status: part.status, digest: part.digest || null, completed, total, percent: percentOf(completed, total), done: false, error: null });
      }
      if (last?.status !== 'success') throw new GatewayError(ErrorCode.UPSTREAM_ERROR, 'Ollama ended the pull before it was complete.');
      manifestDone();
      inventory.forget(state.model);
      const done = this.emit(state, { status: 'success', digest: null, completed: null, total: null, percent: 100, done: true, error: null });
      const size = (await inventory.installed().catch(() => undefined))?.get(state.model)?.sizeBytes ?? null;
      log.info({ model: state.model, host: this.deps.host }, 'model pulled');
      this.deps.publish({ type: 'PULLED', reason: 'REQUEST', model: state.model, at: new Date().toISOString(), sizeBytes: size, host: this.deps.host });
      return done;
    } catch (e) {
      const error = classify(e);
      log.warn({ model: state.model, host: this.deps.host, code: error.code, err: e }, 'model pull failed');
      manifestFailed(error);
      this.emit(state, {
        status: 'error',
        digest: null,
        completed: null,
        total: null,
        percent: null,
        done: true,
        error: { code: error.code, message: error.message, details: error.details },
      });
      throw error;
    } finally {
      this.pulls.delete(state.model);
    }
  }
}

/** The upstream maps Ollama's failures (a model missing from the registry is MODEL_NOT_FOUND, see mapPullError); anything else is UPSTREAM_ERROR. */
function classify(e: unknown): GatewayError {
  return isGatewayError(e) ? e : new GatewayError(ErrorCode.UPSTREAM_ERROR, 'The pull failed.', {}, { cause: e });
}
