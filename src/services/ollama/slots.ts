import { ErrorCode, GatewayError } from '../platform/errors.js';

/**
 * Ollama's own capacity is the admission unit: a host runs at most OLLAMA_NUM_PARALLEL requests
 * per loaded model (envconfig default 1) and holds the rest in its scheduler without sending them
 * a single header (server/sched.go). The gateway therefore sends a request only once it holds a
 * slot of that (host, model), and every other request waits here, where its position is known.
 */
export interface SlotHost {
  readonly url: string;
}

/** A request's place: waiting for, or holding, one slot of one host for one model. */
export interface SlotTicket<H extends SlotHost = SlotHost> {
  /** 0 once a slot is held; otherwise how many requests are ahead of it, plus one. */
  readonly position: number;
  /** Resolves with the host whose slot is held (rejects with CANCELLED when the signal aborts first). */
  readonly granted: Promise<H>;
  /** Resolves on the next change of `position` (or when granted). */
  moved(): Promise<void>;
  /** Gives the slot back, or leaves the queue. Idempotent. */
  release(): void;
}

/** Where requests get their slots: in this process, or shared by every gateway instance (Redis). */
export interface OllamaSlots {
  /**
   * Takes a free slot on the first of `candidates` (best first) that has one, or queues behind the
   * requests already waiting for `model`. The queue is first-come, first-served for each host.
   */
  enter<H extends SlotHost>(model: string, candidates: readonly H[], signal?: AbortSignal): Promise<SlotTicket<H>>;
  close(): Promise<void>;
}

/** OLLAMA_NUM_PARALLEL per host URL: one value for all hosts, or one per host in OLLAMA_HOST order. */
export function capacityOf(hosts: readonly string[], numParallel: readonly number[]): (host: string) => number {
  const byHost = new Map(hosts.map((h, i) => [h, numParallel.length === 1 ? numParallel[0] : numParallel[i]]));
  return (host) => byHost.get(host) ?? numParallel[0] ?? 1;
}

export const cancelledWhileQueued = () => new GatewayError(ErrorCode.CANCELLED, 'The request was cancelled while queued.');

interface Waiter {
  candidates: readonly SlotHost[];
  position: number;
  grant(host: SlotHost): void;
  notify: Array<() => void>;
}

/** The slots of one gateway process (no REDIS_URL): exact, and FIFO per model. */
export class LocalOllamaSlots implements OllamaSlots {
  /** Requests holding a slot, by `host\nmodel`. */
  private readonly held = new Map<string, number>();
  private readonly queues = new Map<string, Waiter[]>();

  constructor(private readonly capacity: (host: string) => number) {}

  /** Requests waiting for a model (metrics and tests). */
  waiting(model: string): number {
    return this.queues.get(model)?.length ?? 0;
  }

  async enter<H extends SlotHost>(model: string, candidates: readonly H[], signal?: AbortSignal): Promise<SlotTicket<H>> {
    if (signal?.aborted) throw cancelledWhileQueued();
    let host: H | undefined;
    let released = false;
    const queue = this.queues.get(model) ?? [];
    // Requests already waiting for this model go first.
    const free = queue.length === 0 ? candidates.find((h) => this.hasRoom(h.url, model)) : undefined;
    if (free) {
      this.take(free.url, model);
      host = free;
      return {
        position: 0,
        granted: Promise.resolve(free),
        moved: () => new Promise(() => {}),
        release: () => {
          if (released) return;
          released = true;
          this.free(free.url, model);
        },
      };
    }

    this.queues.set(model, queue);
    let grant!: (h: H) => void;
    let reject!: (e: unknown) => void;
    const granted = new Promise<H>((resolve, rej) => {
      grant = resolve;
      reject = rej;
    });
    granted.catch(() => {});
    const waiter: Waiter = {
      candidates,
      position: queue.length + 1,
      notify: [],
      grant: (h) => {
        host = h as H;
        waiter.position = 0;
        signal?.removeEventListener('abort', onAbort);
        grant(h as H);
        for (const n of waiter.notify.splice(0)) n();
      },
    };
    queue.push(waiter);
    const leave = () => {
      const i = queue.indexOf(waiter);
      if (i < 0) return;
      queue.splice(i, 1);
      renumber(queue);
      if (queue.length === 0) this.queues.delete(model);
    };
    const onAbort = () => {
      leave();
      reject(cancelledWhileQueued());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    return {
      get position() {
        return waiter.position;
      },
      granted,
      moved: () => new Promise<void>((resolve) => waiter.notify.push(resolve)),
      release: () => {
        if (released) return;
        released = true;
        signal?.removeEventListener('abort', onAbort);
        if (host) this.free(host.url, model);
        else leave();
      },
    };
  }

  async close(): Promise<void> {}

  private hasRoom(host: string, model: string): boolean {
    return (this.held.get(`${host}\n${model}`) ?? 0) < this.capacity(host);
  }

  private take(host: string, model: string): void {
    const key = `${host}\n${model}`;
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
  }

  private free(host: string, model: string): void {
    const key = `${host}\n${model}`;
    const queue = this.queues.get(model);
    // The slot passes straight to the first waiter that can use this host.
    const i = queue?.findIndex((w) => w.candidates.some((c) => c.url === host)) ?? -1;
    if (queue && i >= 0) {
      const [next] = queue.splice(i, 1);
      renumber(queue);
      if (queue.length === 0) this.queues.delete(model);
      next.grant(next.candidates.find((c) => c.url === host)!);
      return;
    }
    const n = (this.held.get(key) ?? 1) - 1;
    if (n > 0) this.held.set(key, n);
    else this.held.delete(key);
  }
}

function renumber(queue: Waiter[]): void {
  queue.forEach((w, i) => {
    if (w.position !== i + 1) {
      w.position = i + 1;
      for (const n of w.notify.splice(0)) n();
    }
  });
}
