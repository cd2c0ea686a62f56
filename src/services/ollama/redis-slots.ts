import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../platform/logger.js';
import { type OllamaSlots, type SlotHost, type SlotTicket, cancelledWhileQueued } from './slots.js';

const PREFIX = 'llmgw:slots:';
/** Every release and departure is announced here (the message is the model), so waiters on every instance look again. */
const CHANNEL = `${PREFIX}changed`;

/**
 * One atomic step for a request: drop waiters whose instance stopped renewing them, then take a
 * free slot if the request is first in line (or there is no line), else join or keep its place.
 * KEYS: the model's queue, then one slot set per candidate host (best first).
 * ARGV: waiter id, now (ms), ttl (ms), then each candidate's capacity.
 * Returns {0, i}: holds a slot of candidate i (1-based); {position, 0}: waiting at that position.
 * A slot set holds its holders with their expiry as score; expired holders (a crashed instance)
 * free their slots by themselves.
 */
const STEP = `
local queue = KEYS[1]
local waiter = ARGV[1]
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local alive = '${PREFIX}alive:'
for _, w in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
  if w ~= waiter and redis.call('EXISTS', alive .. w) == 0 then redis.call('ZREM', queue, w) end
end
local rank = redis.call('ZRANK', queue, waiter)
if rank == 0 or (not rank and redis.call('ZCARD', queue) == 0) then
  for i = 2, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    if redis.call('ZCARD', KEYS[i]) < tonumber(ARGV[2 + i]) then
      redis.call('ZADD', KEYS[i], now + ttl, waiter)
      redis.call('ZREM', queue, waiter)
      redis.call('DEL', alive .. waiter)
      return {0, i - 1}
    end
  end
end
redis.call('SET', alive .. waiter, '1', 'PX', ttl)
if not rank then
  redis.call('ZADD', queue, redis.call('INCR', '${PREFIX}seq'), waiter)
  rank = redis.call('ZRANK', queue, waiter)
end
return {rank + 1, 0}
`;

const slotKey = (host: string, model: string) => `${PREFIX}held:${host}|${model}`;
const queueKey = (model: string) => `${PREFIX}queue:${model}`;

/**
 * The slots shared by every gateway instance on one Redis, so N gateways never send a host more
 * than its OLLAMA_NUM_PARALLEL requests per model, and queue positions are global. Holders and
 * waiters expire unless their instance renews them (every third of `ttlMs`), so the slots of a
 * crashed instance come back by themselves.
 */
export class RedisOllamaSlots implements OllamaSlots {
  /** Waiters of this process, by model: each looks again when its model's slots change. */
  private readonly wakers = new Map<string, Set<() => void>>();
  private readonly subscriber: Redis;

  constructor(
    private readonly client: Redis,
    private readonly capacity: (host: string) => number,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {
    this.subscriber = client.duplicate();
    this.subscriber.on('error', (err) => log.warn({ err: err.message }, 'redis slots subscriber error'));
    this.subscriber.on('message', (_channel: string, model: string) => {
      for (const wake of this.wakers.get(model) ?? []) wake();
    });
    void this.subscriber.subscribe(CHANNEL).catch((err: Error) => log.warn({ err: err.message }, 'redis slots subscribe failed'));
  }

  async enter<H extends SlotHost>(model: string, candidates: readonly H[], signal?: AbortSignal): Promise<SlotTicket<H>> {
    if (signal?.aborted) throw cancelledWhileQueued();
    const id = randomUUID();
    const keys = [queueKey(model), ...candidates.map((h) => slotKey(h.url, model))];
    const caps = candidates.map((h) => this.capacity(h.url));
    const step = async (): Promise<[number, number]> =>
      (await this.client.eval(STEP, keys.length, ...keys, id, Date.now(), this.ttlMs, ...caps)) as [number, number];

    let position: number;
    let host: H | undefined;
    let released = false;
    let notify: Array<() => void> = [];
    let renew: NodeJS.Timeout | undefined;
    let stopWaiting = () => {};
    const [first, index] = await step();
    position = first;
    if (position === 0) host = candidates[index - 1];

    const keepHolding = () => {
      renew = setInterval(() => {
        void this.client.zadd(slotKey(host!.url, model), Date.now() + this.ttlMs, id).catch((err: Error) => this.log.warn({ err: err.message }, 'redis slot renewal failed'));
      }, Math.max(50, Math.floor(this.ttlMs / 3)));
      renew.unref();
    };
    const announce = () => void this.client.publish(CHANNEL, model).catch(() => {});
    /** Leaves the line (released or cancelled while waiting); the others move up at once. */
    const leave = () =>
      void Promise.all([this.client.zrem(queueKey(model), id), this.client.del(`${PREFIX}alive:${id}`)]).then(announce, (err: Error) =>
        this.log.warn({ err: err.message }, 'redis queue leave failed'),
      );

    let granted: Promise<H>;
    if (host) {
      keepHolding();
      granted = Promise.resolve(host);
    } else {
      granted = new Promise<H>((resolve, reject) => {
        let looking = false;
        let again = false;
        const wakers = this.wakers.get(model) ?? new Set();
        this.wakers.set(model, wakers);
        stopWaiting = () => {
          wakers.delete(look);
          if (wakers.size === 0) this.wakers.delete(model);
          clearInterval(renew);
          signal?.removeEventListener('abort', onAbort);
        };
        const look = () => {
          if (released) return;
          if (looking) return void (again = true);
          looking = true;
          step().then(
            ([pos, i]) => {
              looking = false;
              if (released) {
                // Released while the step ran: give back what it may have taken.
                if (pos === 0) void this.client.zrem(slotKey(candidates[i - 1].url, model), id).then(announce);
                return;
              }
              if (pos !== position) {
                position = pos;
                for (const n of notify.splice(0)) n();
              }
              if (pos === 0) {
                host = candidates[i - 1];
                stopWaiting();
                keepHolding();
                announce(); // the line moved up for the others
                resolve(host);
              } else if (again) {
                again = false;
                look();
              }
            },
            (err: Error) => {
              looking = false;
              this.log.warn({ err: err.message }, 'redis slot step failed; retrying');
            },
          );
        };
        const onAbort = () => {
          stopWaiting();
          released = true;
          leave();
          reject(cancelledWhileQueued());
        };
        wakers.add(look);
        signal?.addEventListener('abort', onAbort, { once: true });
        // Also look now and then: keeps this waiter alive and survives a lost announcement.
        renew = setInterval(look, Math.max(50, Math.floor(this.ttlMs / 3)));
        renew.unref();
      });
      granted.catch(() => {});
    }

    return {
      get position() {
        return position;
      },
      granted,
      moved: () => new Promise<void>((resolve) => notify.push(resolve)),
      release: () => {
        if (released) return;
        released = true;
        stopWaiting();
        clearInterval(renew);
        if (!host) leave();
        else void this.client.zrem(slotKey(host.url, model), id).then(announce, (err: Error) => this.log.warn({ err: err.message }, 'redis slot release failed'));
        notify = [];
      },
    };
  }

  async close(): Promise<void> {
    await this.subscriber.quit().catch(() => {});
  }
}
