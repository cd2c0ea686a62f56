/** A long-lived client connection (a websocket, an SSE response) that can be closed from outside. */
export interface Connection {
  close(): void;
}

/**
 * Open connections per API key, so revoking a key can close them. Transports register a
 * connection once authenticated and unregister it when it closes.
 */
export class ConnectionRegistry {
  private readonly byOwner = new Map<string, Set<Connection>>();

  /** Registers a connection; returns the function that unregisters it. */
  add(ownerId: string, connection: Connection): () => void {
    let set = this.byOwner.get(ownerId);
    if (!set) this.byOwner.set(ownerId, (set = new Set()));
    set.add(connection);
    return () => {
      const current = this.byOwner.get(ownerId);
      if (!current?.delete(connection)) return;
      if (current.size === 0) this.byOwner.delete(ownerId);
    };
  }

  countFor(ownerId: string): number {
    return this.byOwner.get(ownerId)?.size ?? 0;
  }

  /** Closes every connection of one key; returns how many there were. */
  closeOwner(ownerId: string): number {
    const set = this.byOwner.get(ownerId);
    if (!set) return 0;
    this.byOwner.delete(ownerId);
    for (const connection of set) {
      try {
        connection.close();
      } catch {
        // Already gone.
      }
    }
    return set.size;
  }
}
