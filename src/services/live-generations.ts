import { ErrorCode, GatewayError } from './errors.js';
import type { ActiveStreams } from './generation/active-streams.js';
import type { GenerationEvent, GenerationPhase } from './generation/generation-service.js';
import type { Principal } from './keys.js';

/** One running generation as the admin console shows it. */
export interface LiveGeneration {
  id: string;
  apiKeyId: string;
  apiKeyName: string;
  apiKeyPrefix: string;
  /** Model as the client named it. */
  model: string;
  kind: string;
  streamed: boolean;
  phase: GenerationPhase;
  queuePosition: number | null;
  completionTokens: number;
  startedAt: Date;
  firstTokenAt: Date | null;
  /** Tokens per second since the first token; null before the second batch of tokens. */
  tokensPerSecond: number | null;
}

interface Entry extends Omit<LiveGeneration, 'tokensPerSecond'> {
  lastTokenAt: number;
}

export interface FollowInfo {
  principal: Principal;
  model: string;
  kind: string;
  streamed: boolean;
}

/**
 * Running generations of this gateway instance, built from the events each stream hands its
 * consumer (phase, queue position, tokens), for the admin console's live view. Entries whose
 * stream is no longer in ActiveStreams are never reported, so a consumer that vanished without
 * closing its iterator cannot leave a ghost behind.
 */
export class LiveGenerations {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly active: ActiveStreams) {}

  /** Wraps a generation's event stream: each event updates the entry, the end of the stream removes it. */
  follow(info: FollowInfo, source: AsyncIterableIterator<GenerationEvent>): AsyncIterableIterator<GenerationEvent> {
    let id: string | undefined;
    const forget = () => {
      if (id && this.entries.delete(id)) this.changed();
    };
    const seen = (r: IteratorResult<GenerationEvent>) => {
      if (r.done) forget();
      else id = this.record(info, r.value);
      return r;
    };
    return {
      next: () => source.next().then(seen, (e: unknown) => {
        forget();
        throw e;
      }),
      return: (value?: unknown) => {
        forget();
        return source.return ? source.return(value as undefined) : Promise.resolve({ done: true, value: undefined });
      },
      throw: (error?: unknown) => {
        forget();
        return source.throw ? source.throw(error) : Promise.reject(error);
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  private record(info: FollowInfo, event: GenerationEvent): string {
    const now = Date.now();
    let entry = this.entries.get(event.generationId);
    if (event.type === 'DONE') {
      this.entries.delete(event.generationId);
      this.changed();
      return event.generationId;
    }
    if (!entry) {
      entry = {
        id: event.generationId,
        apiKeyId: info.principal.id,
        apiKeyName: info.principal.name,
        apiKeyPrefix: info.principal.prefix,
        model: info.model,
        kind: info.kind,
        streamed: info.streamed,
        phase: 'GENERATING',
        queuePosition: null,
        completionTokens: 0,
        startedAt: new Date(now),
        firstTokenAt: null,
        lastTokenAt: now,
      };
      this.entries.set(entry.id, entry);
    }
    if (event.type === 'PHASE') {
      entry.phase = event.phase;
      entry.queuePosition = event.queuePosition;
    } else {
      entry.phase = 'GENERATING';
      entry.queuePosition = null;
      entry.firstTokenAt ??= new Date(now);
      entry.completionTokens += event.tokenCount;
      entry.lastTokenAt = now;
    }
    this.changed();
    return entry.id;
  }

  /** The running generations, oldest first. */
  list(): LiveGeneration[] {
    const out: LiveGeneration[] = [];
    for (const e of this.entries.values()) {
      if (!this.active.has(e.id)) continue;
      const { lastTokenAt, ...shown } = e;
      const seconds = e.firstTokenAt ? (lastTokenAt - e.firstTokenAt.getTime()) / 1000 : 0;
      // The first batch opens the clock; the rate counts the tokens after it.
      const rate = seconds > 0 ? Math.round(((e.completionTokens - 1) / seconds) * 10) / 10 : null;
      out.push({ ...shown, tokensPerSecond: rate });
    }
    return out.sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime());
  }

  /** Cancels any running generation (admin); NOT_FOUND when none runs under that id on this instance. */
  cancel(id: string): boolean {
    if (!this.active.cancel(id)) throw new GatewayError(ErrorCode.NOT_FOUND, 'No running generation with this id on this gateway instance.', { id });
    return true;
  }

  /**
   * Snapshots of the running generations: one at once, then one after each change, at most one
   * per `intervalMs` and at least one per `heartbeatMs` (tokens/s moves on). Ends with `signal`,
   * or at once when the consumer calls `return()` (a parked generator would only see it later).
   */
  watch(signal: AbortSignal | undefined, intervalMs = 250, heartbeatMs = 1000): AsyncIterableIterator<LiveGeneration[]> {
    const stop = new AbortController();
    const onOuterAbort = () => stop.abort();
    if (signal?.aborted) stop.abort();
    else signal?.addEventListener('abort', onOuterAbort, { once: true });
    const snapshots = this.snapshots(stop.signal, intervalMs, heartbeatMs);
    const end = () => {
      stop.abort();
      signal?.removeEventListener('abort', onOuterAbort);
    };
    return {
      next: () => snapshots.next(),
      return: (value?: unknown) => {
        end();
        return snapshots.return(value as undefined);
      },
      throw: (error?: unknown) => {
        end();
        return snapshots.throw(error);
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  private async *snapshots(signal: AbortSignal, intervalMs: number, heartbeatMs: number): AsyncGenerator<LiveGeneration[]> {
    let dirty = true;
    let wake: (() => void) | undefined;
    const onChange = () => {
      dirty = true;
      wake?.();
    };
    const onAbort = () => wake?.();
    this.listeners.add(onChange);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      let last = 0;
      while (!signal.aborted) {
        const wait = Math.max(0, last + intervalMs - Date.now());
        if (wait > 0) await sleep(wait, signal);
        last = Date.now();
        dirty = false;
        yield this.list();
        if (!dirty && !signal.aborted) {
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(resolve, heartbeatMs);
            timer.unref();
          });
          clearTimeout(timer);
          wake = undefined;
        }
      }
    } finally {
      this.listeners.delete(onChange);
      signal.removeEventListener('abort', onAbort);
    }
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    timer.unref();
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
