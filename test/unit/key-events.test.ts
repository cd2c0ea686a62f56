import { describe, expect, it } from 'vitest';
import { ConnectionRegistry } from '../../src/services/platform/connections.js';
import { type KeyEvent, PubSubKeyEventBus } from '../../src/services/access/key-events.js';
import { createGatewayPubSub } from '../../src/services/platform/pubsub.js';

describe('PubSubKeyEventBus', () => {
  it('delivers a revocation to every instance sharing the event target (as a Redis target would)', async () => {
    const shared = new EventTarget(); // stands in for @graphql-yoga/redis-event-target
    const one = new PubSubKeyEventBus(createGatewayPubSub({ eventTarget: shared as never }));
    const two = new PubSubKeyEventBus(createGatewayPubSub({ eventTarget: shared as never }));
    const seen: Array<[string, KeyEvent]> = [];
    const got = new Promise<void>((resolve) => {
      one.subscribe((e) => void seen.push(['one', e]));
      two.subscribe((e) => {
        seen.push(['two', e]);
        resolve();
      });
    });
    await new Promise((r) => setImmediate(r)); // let both subscriptions start
    await one.publish({ type: 'revoked', keyId: 'k1', prefix: 'llmgw_abcdefgh' });
    await got;
    await new Promise((r) => setImmediate(r));
    expect(seen.map(([who]) => who).sort()).toEqual(['one', 'two']);
    expect(seen[0][1]).toEqual({ type: 'revoked', keyId: 'k1', prefix: 'llmgw_abcdefgh' });
  });

  it('keeps delivering after a listener throws, and stops after unsubscribe', async () => {
    const errors: unknown[] = [];
    const bus = new PubSubKeyEventBus(createGatewayPubSub(), (e) => errors.push(e));
    const seen: string[] = [];
    const stop = bus.subscribe((e) => {
      seen.push(e.keyId);
      if (e.keyId === 'bad') throw new Error('listener failed');
    });
    await new Promise((r) => setImmediate(r));
    await bus.publish({ type: 'revoked', keyId: 'bad', prefix: 'p' });
    await bus.publish({ type: 'revoked', keyId: 'good', prefix: 'p' });
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual(['bad', 'good']);
    expect(errors).toHaveLength(1);
    stop();
    await bus.publish({ type: 'revoked', keyId: 'after', prefix: 'p' });
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual(['bad', 'good']);
  });
});

describe('ConnectionRegistry', () => {
  it('closes every connection of one key only, once', () => {
    const registry = new ConnectionRegistry();
    const closed: string[] = [];
    registry.add('a', { close: () => closed.push('a1') });
    const removeA2 = registry.add('a', { close: () => closed.push('a2') });
    registry.add('b', { close: () => closed.push('b1') });
    registry.add('a', {
      close: () => {
        throw new Error('already closed');
      },
    });
    removeA2();
    expect(registry.countFor('a')).toBe(2);
    expect(registry.closeOwner('a')).toBe(2);
    expect(closed).toEqual(['a1']);
    expect(registry.countFor('a')).toBe(0);
    expect(registry.closeOwner('a')).toBe(0);
    expect(registry.countFor('b')).toBe(1);
  });
});
