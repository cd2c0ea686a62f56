import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import type { PubSubEventTarget } from 'graphql-yoga';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import type { Logger } from './logger.js';
import type { GatewayTopics } from './pubsub.js';
import { type Counter, MemoryRateLimitStore, type RateLimitStore, counterFrom } from '../access/rate-limit.js';

/**
 * Redis for running several gateway instances: pub/sub events (model events, pull progress, key
 * revocation) reach subscribers on every instance, and rate-limit windows are shared.
 * A subscribed Redis connection can do nothing else, hence separate clients.
 */
export class RedisBackplane {
  readonly publisher: Redis;
  readonly subscriber: Redis;

  constructor(url: string, log: Logger) {
    const options = { maxRetriesPerRequest: 3, enableOfflineQueue: true, lazyConnect: false };
    this.publisher = new Redis(url, options);
    this.subscriber = new Redis(url, options);
    for (const [role, client] of [['publisher', this.publisher], ['subscriber', this.subscriber]] as const) {
      // ioredis reconnects by itself; log instead of crashing on a transient error.
      client.on('error', (err) => log.warn({ err: err.message, role }, 'redis connection error'));
    }
  }

  eventTarget(): PubSubEventTarget<GatewayTopics> {
    return createRedisEventTarget({ publishClient: this.publisher, subscribeClient: this.subscriber }) as PubSubEventTarget<GatewayTopics>;
  }

  rateLimitStore(): RateLimitStore {
    return new RedisRateLimitStore(this.publisher);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.publisher.quit(), this.subscriber.quit()]);
  }
}

/**
 * Per-window counters (requests and tokens per minute) live in Redis, shared by all instances.
 * The concurrent-streams gauge stays in each process: a gauge in Redis would keep the streams of
 * a crashed instance counted forever, so that limit applies per instance.
 */
export class RedisRateLimitStore implements RateLimitStore {
  private readonly local = new MemoryRateLimitStore();

  constructor(private readonly client: Redis) {}

  counter(name: string, windowSeconds: number): Counter {
    if (windowSeconds <= 0) return this.local.counter(name, windowSeconds);
    return counterFrom(
      new RateLimiterRedis({ storeClient: this.client, keyPrefix: `llmgw:${name}`, points: Number.MAX_SAFE_INTEGER, duration: windowSeconds }),
    );
  }
}
