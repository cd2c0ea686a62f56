import { describe, expect, it } from 'vitest';
import { ActiveStreams } from '../../src/services/generation/active-streams.js';
import { LiveGenerations } from '../../src/services/generation/live-generations.js';

const principal = { id: 'key-1', name: 'alice', prefix: 'llmgw_abc', role: 'USER' as const };
const start = (generationId: string, over: Partial<{ requested: string; kind: string; streamed: boolean }> = {}) => ({
  generationId,
  principal,
  requested: 'llama3.2',
  kind: 'generate',
  streamed: true,
  ...over,
});
const ended = { status: 'COMPLETE' as const, errorCode: null, creditsCharged: 1, completionTokens: 4 };

function running(active: ActiveStreams, id: string) {
  let finish!: () => void;
  active.add(id, principal.id, new AbortController(), new Promise<void>((r) => (finish = r)));
  return finish;
}

describe('LiveGenerations', () => {
  it('follows phase, queue position and tokens from the run, and forgets it at its end', async () => {
    const active = new ActiveStreams();
    const live = new LiveGenerations(active);
    running(active, 'g1');
    const probe = live.begin('llama3.2:latest', start('g1'));

    probe.phase!('QUEUED', 2);
    expect(live.list()).toMatchObject([{ id: 'g1', apiKeyName: 'alice', apiKeyPrefix: 'llmgw_abc', model: 'llama3.2', phase: 'QUEUED', queuePosition: 2, completionTokens: 0, tokensPerSecond: null }]);

    probe.tokens(1);
    expect(live.list()[0]).toMatchObject({ phase: 'GENERATING', queuePosition: null, completionTokens: 1, tokensPerSecond: null });
    await new Promise((r) => setTimeout(r, 120));
    probe.tokens(3);
    const row = live.list()[0]!;
    expect(row.completionTokens).toBe(4);
    // 3 tokens after the first, over about 120 ms or more (a timer may fire a millisecond early).
    expect(row.tokensPerSecond).toBeGreaterThan(0);
    expect(row.tokensPerSecond).toBeLessThanOrEqual(3 / 0.11);

    probe.end(ended);
    expect(live.list()).toEqual([]);
  });

  it('never reports a run that left ActiveStreams, even before its end was observed', async () => {
    const active = new ActiveStreams();
    const live = new LiveGenerations(active);
    running(active, 'a');
    const finishB = running(active, 'b');
    const a = live.begin('m', start('a', { kind: 'chat' }));
    live.begin('m', start('b', { kind: 'chat', streamed: false })).phase!('LOADING_MODEL', null);
    a.phase!('GENERATING', null);
    expect(live.list().map((g) => g.id)).toEqual(['a', 'b']);

    a.end({ ...ended, status: 'CANCELLED' });
    expect(live.list().map((g) => g.id)).toEqual(['b']);

    // The run's bookkeeping settled while its end was never observed.
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
    running(active, 'w');
    const probe = live.begin('m', start('w'));
    // A burst of 20 token events: coalesced into a few snapshots, not one each.
    const burstFrom = Date.now();
    for (let i = 0; i < 20; i++) {
      probe.tokens(1);
      await new Promise((r) => setImmediate(r));
    }
    const burstMs = Date.now() - burstFrom;
    const deadline = Date.now() + 5000;
    while (snapshots.at(-1) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(snapshots[0]).toBe(0);
    expect(snapshots.at(-1)).toBe(1);
    // At most one per 100 ms interval while the burst lasted (a busy machine stretches it), plus the
    // first and the last; fewer than one per event either way.
    expect(snapshots.length).toBeLessThanOrEqual(Math.min(20, 3 + Math.floor(burstMs / 95)));
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
