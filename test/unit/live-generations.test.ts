import { describe, expect, it } from 'vitest';
import { ActiveStreams } from '../../src/services/generation/active-streams.js';
import type { GenerationEvent } from '../../src/services/generation/generation-service.js';
import { LiveGenerations } from '../../src/services/live-generations.js';

const principal = { id: 'key-1', name: 'alice', prefix: 'llmgw_abc', role: 'USER' as const };

/** A hand-fed event stream: push events, end it; `returned` tells whether return() was called. */
function feed() {
  const queue: Array<IteratorResult<GenerationEvent>> = [];
  let waiting: ((r: IteratorResult<GenerationEvent>) => void) | undefined;
  const state = { returned: false };
  const give = (r: IteratorResult<GenerationEvent>) => (waiting ? (waiting(r), (waiting = undefined)) : queue.push(r));
  const source: AsyncIterableIterator<GenerationEvent> = {
    next: () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((r) => (waiting = r))),
    return: async () => {
      state.returned = true;
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return { source, state, push: (e: GenerationEvent) => give({ done: false, value: e }), end: () => give({ done: true, value: undefined }) };
}

function running(active: ActiveStreams, id: string) {
  let finish!: () => void;
  active.add(id, principal.id, new AbortController(), new Promise<void>((r) => (finish = r)));
  return finish;
}

describe('LiveGenerations', () => {
  it('follows phase, queue position and tokens from the events, and forgets the stream at its end', async () => {
    const active = new ActiveStreams();
    const live = new LiveGenerations(active);
    const f = feed();
    running(active, 'g1');
    const it = live.follow({ principal, model: 'llama3.2', kind: 'generate', streamed: true }, f.source);

    f.push({ type: 'PHASE', generationId: 'g1', phase: 'QUEUED', queuePosition: 2 });
    await it.next();
    expect(live.list()).toMatchObject([{ id: 'g1', apiKeyName: 'alice', apiKeyPrefix: 'llmgw_abc', model: 'llama3.2', phase: 'QUEUED', queuePosition: 2, completionTokens: 0, tokensPerSecond: null }]);

    f.push({ type: 'TOKEN', generationId: 'g1', delta: 'Hel', tokenCount: 1 });
    await it.next();
    expect(live.list()[0]).toMatchObject({ phase: 'GENERATING', queuePosition: null, completionTokens: 1, tokensPerSecond: null });
    await new Promise((r) => setTimeout(r, 120));
    f.push({ type: 'TOKEN', generationId: 'g1', delta: 'lo, world', tokenCount: 3 });
    await it.next();
    const row = live.list()[0]!;
    expect(row.completionTokens).toBe(4);
    // 3 tokens after the first, over about 120 ms or more (a timer may fire a millisecond early).
    expect(row.tokensPerSecond).toBeGreaterThan(0);
    expect(row.tokensPerSecond).toBeLessThanOrEqual(3 / 0.11);

    f.end();
    expect(await it.next()).toEqual({ done: true, value: undefined });
    expect(live.list()).toEqual([]);
  });

  it('forgets a stream whose consumer returns, and never reports one that left ActiveStreams', async () => {
    const active = new ActiveStreams();
    const live = new LiveGenerations(active);
    const a = feed();
    const b = feed();
    running(active, 'a');
    const finishB = running(active, 'b');
    const ia = live.follow({ principal, model: 'm', kind: 'chat', streamed: true }, a.source);
    const ib = live.follow({ principal, model: 'm', kind: 'chat', streamed: false }, b.source);
    a.push({ type: 'PHASE', generationId: 'a', phase: 'GENERATING', queuePosition: null });
    b.push({ type: 'PHASE', generationId: 'b', phase: 'LOADING_MODEL', queuePosition: null });
    await Promise.all([ia.next(), ib.next()]);
    expect(live.list().map((g) => g.id)).toEqual(['a', 'b']);

    await ia.return!();
    expect(a.state.returned).toBe(true);
    expect(live.list().map((g) => g.id)).toEqual(['b']);

    // The run ended (its bookkeeping settled) while its consumer never came back.
    finishB();
    await new Promise((r) => setImmediate(r));
    expect(live.list()).toEqual([]);
  });

  it('cancel aborts any running stream, and is NOT_FOUND for one that is not running', () => {
    const active = new ActiveStreams();
    const live = new LiveGenerations(active);
    const controller = new AbortController();
    active.add('x', 'someone-else', controller, new Promise(() => {}));
    expect(live.cancel('x')).toBe(true);
    expect(controller.signal.aborted).toBe(true);
    expect(() => live.cancel('nope')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  });

  it('watch sends a snapshot at once, then after changes at most once per interval, and ends with its signal', async () => {
    const active = new ActiveStreams();
    const live = new LiveGenerations(active);
    const controller = new AbortController();
    const snapshots: number[] = [];
    const times: number[] = [];
    const watching = (async () => {
      for await (const list of live.watch(controller.signal, 100, 10_000)) {
        snapshots.push(list.length);
        times.push(Date.now());
      }
    })();
    const f = feed();
    running(active, 'w');
    const it = live.follow({ principal, model: 'm', kind: 'generate', streamed: true }, f.source);
    // A burst of 20 events: coalesced into a few snapshots, not one each.
    for (let i = 0; i < 20; i++) {
      f.push({ type: 'TOKEN', generationId: 'w', delta: 'x', tokenCount: 1 });
      await it.next();
    }
    const deadline = Date.now() + 5000;
    while (snapshots.at(-1) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(snapshots[0]).toBe(0);
    expect(snapshots.at(-1)).toBe(1);
    expect(snapshots.length).toBeLessThan(6);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(95);
    controller.abort();
    await watching;
  });

  it('watch ends at once when its consumer returns, without waiting for the heartbeat', async () => {
    const live = new LiveGenerations(new ActiveStreams());
    const it = live.watch(undefined, 100, 60_000);
    expect(await it.next()).toEqual({ done: false, value: [] });
    const parked = it.next(); // waits for a change or the 60 s heartbeat
    const started = Date.now();
    await it.return!();
    expect(await parked).toEqual({ done: true, value: undefined });
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});
