/** The part of the gateway's pub/sub a key-event bus uses (kept minimal: no import back into pubsub.ts). */
export interface KeyEventTopic {
  publish(topic: 'keys:event', event: KeyEvent): void;
  subscribe(topic: 'keys:event'): AsyncIterableIterator<KeyEvent>;
}

/** Something that happened to an API key that every gateway instance must act on. */
export type KeyEvent = { type: 'revoked'; keyId: string; prefix: string };

export type KeyEventListener = (event: KeyEvent) => void | Promise<void>;

/**
 * Broadcasts key events to every gateway instance (PubSubKeyEventBus on the gateway's pub/sub,
 * which is Redis with REDIS_URL); InProcessKeyEventBus reaches only its own process. Each instance
 * also re-checks a key on every operation, so an instance that misses an event still refuses new
 * work from a revoked key.
 */
export interface KeyEventBus {
  /** Hands the event on; whether this instance's listeners already ran depends on the bus (see each). */
  publish(event: KeyEvent): Promise<void>;
  /** Returns the function that unsubscribes. */
  subscribe(listener: KeyEventListener): () => void;
}

/** One process only: `publish` resolves once its listeners have handled the event. */
export class InProcessKeyEventBus implements KeyEventBus {
  private readonly listeners = new Set<KeyEventListener>();

  async publish(event: KeyEvent): Promise<void> {
    await Promise.allSettled([...this.listeners].map(async (listener) => listener(event)));
  }

  subscribe(listener: KeyEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * The bus on the gateway's pub/sub (topic `keys:event`): in-process by default, across instances
 * when the pub/sub is given a distributed event target (Redis). `publish` returns once the event is
 * handed to the pub/sub; this instance's listeners run right after.
 */
export class PubSubKeyEventBus implements KeyEventBus {
  constructor(
    private readonly pubsub: KeyEventTopic,
    private readonly onListenerError: (error: unknown) => void = () => {},
  ) {}

  async publish(event: KeyEvent): Promise<void> {
    this.pubsub.publish('keys:event', event);
  }

  subscribe(listener: KeyEventListener): () => void {
    const events = this.pubsub.subscribe('keys:event');
    void (async () => {
      for await (const event of events) {
        // Not awaited: one slow revocation must not hold up the next.
        Promise.resolve()
          .then(() => listener(event))
          .catch(this.onListenerError);
      }
    })();
    return () => void events.return?.();
  }
}
