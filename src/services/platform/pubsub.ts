import { createPubSub, type PubSub, type PubSubEventTarget } from 'graphql-yoga';
import type { KeyEvent } from '../access/key-events.js';
import type { ModelEvent, PullProgress } from '../models/events.js';

/**
 * Every pub/sub topic and its publish arguments: `[payload]`, or `[id, payload]` for topics
 * keyed by an id (subscribe with the same id). Payloads stay JSON-safe so a distributed event
 * target (e.g. Redis) can carry them. Add new topics here.
 */
export type GatewayTopics = {
  /** Model lifecycle events (pulled, loaded, unloaded, deleted). */
  'models:event': [event: ModelEvent];
  /** Progress of the pull of one model, keyed by its canonical name. */
  'models:pull': [model: string, progress: PullProgress];
  /** API key events (revocation), acted on by every instance: end the key's streams, close its sockets. */
  'keys:event': [event: KeyEvent];
};

/** The gateway's pub/sub: yoga's typed `createPubSub` over an in-process or distributed EventTarget. */
export type GatewayPubSub = PubSub<GatewayTopics>;

export interface PubSubOptions {
  /**
   * Where events travel. Defaults to an in-process EventTarget; pass a distributed one
   * (`@graphql-yoga/redis-event-target`) to share events between gateway instances.
   */
  eventTarget?: PubSubEventTarget<GatewayTopics>;
}

export function createGatewayPubSub(options: PubSubOptions = {}): GatewayPubSub {
  return createPubSub<GatewayTopics>({ eventTarget: options.eventTarget });
}
