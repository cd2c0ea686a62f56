/**
 * Things open at once per id (sockets per address, streams per address, …). `acquire` counts
 * one when the id is under `max` (0 = no limit) and returns its release function, which is
 * idempotent; it returns undefined when the id is at the limit.
 */
export class ConcurrencyLimit {
  private readonly counts = new Map<string, number>();

  constructor(readonly max: number) {}

  acquire(id: string): (() => void) | undefined {
    const current = this.counts.get(id) ?? 0;
    if (this.max > 0 && current >= this.max) return undefined;
    this.counts.set(id, current + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.counts.get(id) ?? 1) - 1;
      if (n <= 0) this.counts.delete(id);
      else this.counts.set(id, n);
    };
  }

  count(id: string): number {
    return this.counts.get(id) ?? 0;
  }

  /** Ids with something open (for tests and metrics). */
  get size(): number {
    return this.counts.size;
  }
}
