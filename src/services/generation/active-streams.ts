import { ErrorCode, GatewayError } from '../platform/errors.js';

interface RunningStream {
  controller: AbortController;
  ownerId: string;
  done: Promise<void>;
}

/**
 * Every running generation, so that shutdown, key revocation and cancelGeneration can abort
 * them and wait for their rows to be written.
 */
export class ActiveStreams {
  private readonly streams = new Map<string, RunningStream>();

  add(id: string, ownerId: string, controller: AbortController, done: Promise<void>): void {
    this.streams.set(id, { controller, ownerId, done });
    void done.finally(() => this.streams.delete(id));
  }

  get size(): number {
    return this.streams.size;
  }

  countFor(ownerId: string): number {
    let n = 0;
    for (const s of this.streams.values()) if (s.ownerId === ownerId) n++;
    return n;
  }

  has(id: string): boolean {
    return this.streams.has(id);
  }

  ownerOf(id: string): string | undefined {
    return this.streams.get(id)?.ownerId;
  }

  /**
   * Aborts one stream; returns false when it is not running. With a `reason` the client receives
   * that error (e.g. UNAUTHENTICATED after revocation); without one the stream ends as CANCELLED.
   */
  cancel(id: string, reason: GatewayError = new GatewayError(ErrorCode.CANCELLED, 'The generation was cancelled by cancelGeneration.')): boolean {
    const s = this.streams.get(id);
    if (!s) return false;
    s.controller.abort(reason);
    return true;
  }

  /** Aborts every stream of one API key and waits until their rows are written. */
  async cancelOwner(ownerId: string, reason?: GatewayError): Promise<number> {
    const mine = [...this.streams.values()].filter((s) => s.ownerId === ownerId);
    for (const s of mine) s.controller.abort(reason);
    await Promise.allSettled(mine.map((s) => s.done));
    return mine.length;
  }

  /** Waits up to `graceMs` for streams to finish on their own, then aborts the rest and waits for their bookkeeping. */
  async drain(graceMs: number, reason: GatewayError = new GatewayError(ErrorCode.CANCELLED, 'The gateway is shutting down; the answer was cut.')): Promise<void> {
    const pending = () => [...this.streams.values()].map((s) => s.done);
    if (this.streams.size && graceMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled(pending()), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    for (const s of this.streams.values()) s.controller.abort(reason);
    await Promise.allSettled(pending());
  }
}
