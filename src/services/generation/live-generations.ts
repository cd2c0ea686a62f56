import { ErrorCode, GatewayError } from '../platform/errors.js';
import type { ActiveStreams } from './active-streams.js';
import type { GenerationObserver, GenerationProbe, GenerationStart } from './hooks.js';
import type { GenerationPhase } from './types.js';

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

/**
 * Running generations of this gateway instance, for the admin console's live view: an observer of
 * every generation run (phase, queue position, tokens). Entries whose stream is no longer in
 * ActiveStreams are never reported, so nothing that vanished can leave a ghost behind.
 */
export class LiveGenerations implements GenerationObserver {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly active: ActiveStreams) {}

  begin(_model: string, run: GenerationStart): GenerationProbe {
    const now = Date.now();
    const entry: Entry = {
      id: run.generationId,
      apiKeyId: run.principal.id,
      apiKeyName: run.principal.name,
      apiKeyPrefix: run.principal.prefix,
      model: run.requested,
      kind: run.kind,
      streamed: run.streamed,
      phase: 'GENERATING',
      queuePosition: null,
      completionTokens: 0,
      startedAt: new Date(now),
      firstTokenAt: null,
      lastTokenAt: now,
    };
    this.entries.set(entry.id, entry);
    this.changed();
    return {
      phase: (phase, queuePosition) => {
        entry.phase = phase;
        entry.queuePosition = queuePosition;
        this.changed();
      },
      upstreamAnswered: () => {},
      firstToken: () => {},
      tokens: (count) => {
        const at = Date.now();
        entry.phase = 'GENERATING';
        entry.queuePosition = null;
        entry.firstTokenAt ??= new Date(at);
        entry.completionTokens += count;
        entry.lastTokenAt = at;
        this.changed();
      },
      end: () => {
        if (this.entries.delete(entry.id)) this.changed();
      },
    };
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
