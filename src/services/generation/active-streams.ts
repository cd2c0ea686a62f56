/**
 * Every running generation, so that shutdown (and later cancelGeneration) can abort them and
 * wait for their rows to be written.
 */
export class ActiveStreams {
  private readonly streams = new Map<string, { controller: AbortController; ownerId: string; done: Promise<void> }>();

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

  /** Aborts one stream; returns false when it is not running. */
  cancel(id: string): boolean {
    const s = this.streams.get(id);
    if (!s) return false;
    s.controller.abort();
    return true;
  }

  /** Waits up to `graceMs` for streams to finish on their own, then aborts the rest and waits for their bookkeeping. */
  async drain(graceMs: number): Promise<void> {
    const pending = () => [...this.streams.values()].map((s) => s.done);
    if (this.streams.size && graceMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled(pending()), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    for (const s of this.streams.values()) s.controller.abort();
    await Promise.allSettled(pending());
  }
}
