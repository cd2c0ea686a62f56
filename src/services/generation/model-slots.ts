import { ErrorCode, GatewayError } from '../errors.js';

/** A place in a model's queue. */
export interface SlotTicket {
  /** 0 once the request holds a slot; otherwise how many requests are ahead of it, plus one. */
  readonly position: number;
  /** Resolves when the request holds a slot. */
  readonly granted: Promise<void>;
  /** Resolves on the next change of `position` (or when granted). */
  moved(): Promise<void>;
  /** Gives the slot back, or leaves the queue if not granted yet. Idempotent. */
  release(): void;
}

interface Waiter {
  position: number;
  grant: () => void;
  notify: Array<() => void>;
}

/**
 * Caps concurrent generations per model (Ollama queues extra requests invisibly, up to 503s);
 * requests over the cap wait here in FIFO order and can tell the client their position.
 * A limit of 0 means no cap.
 */
export class ModelSlots {
  private readonly running = new Map<string, number>();
  private readonly queues = new Map<string, Waiter[]>();

  constructor(private readonly limit: number) {}

  /** Queue length of a model (for metrics and tests). */
  waiting(model: string): number {
    return this.queues.get(model)?.length ?? 0;
  }

  enter(model: string, signal?: AbortSignal): SlotTicket {
    let released = false;
    const active = this.running.get(model) ?? 0;
    if (this.limit === 0 || active < this.limit) {
      this.running.set(model, active + 1);
      return {
        position: 0,
        granted: Promise.resolve(),
        moved: () => new Promise(() => {}),
        release: () => {
          if (released) return;
          released = true;
          this.free(model);
        },
      };
    }

    const queue = this.queues.get(model) ?? [];
    this.queues.set(model, queue);
    let grant!: () => void;
    let reject!: (e: unknown) => void;
    const granted = new Promise<void>((resolve, rej) => {
      grant = resolve;
      reject = rej;
    });
    granted.catch(() => {});
    const waiter: Waiter = { position: queue.length + 1, grant: () => grant(), notify: [] };
    queue.push(waiter);
    let holding = false;
    waiter.grant = () => {
      holding = true;
      waiter.position = 0;
      grant();
    };

    const leave = () => {
      const i = queue.indexOf(waiter);
      if (i >= 0) {
        queue.splice(i, 1);
        this.renumber(queue);
      }
    };
    const onAbort = () => {
      leave();
      reject(new GatewayError(ErrorCode.CANCELLED, 'The request was cancelled while queued.'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    void granted.then(
      () => signal?.removeEventListener('abort', onAbort),
      () => {},
    );

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
        if (holding) this.free(model);
        else leave();
      },
    };
  }

  private free(model: string): void {
    const queue = this.queues.get(model);
    const next = queue?.shift();
    if (next) {
      // The slot passes straight to the next waiter; the running count stays the same.
      next.grant();
      for (const n of next.notify.splice(0)) n();
      this.renumber(queue!);
      return;
    }
    const n = (this.running.get(model) ?? 1) - 1;
    if (n > 0) this.running.set(model, n);
    else this.running.delete(model);
  }

  private renumber(queue: Waiter[]): void {
    queue.forEach((w, i) => {
      if (w.position !== i + 1) {
        w.position = i + 1;
        for (const n of w.notify.splice(0)) n();
      }
    });
  }
}
