import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModels } from '../../src/emulator/server.js';
import { tokenize } from '../../src/emulator/script.js';
import { Generation } from '../../src/entities/generation.js';
import { BUSY_EVENT_INTERVAL_MS } from '../../src/services/generation/run-context.js';
import { type GraphQLResponse, type TestGateway, collect, post, sse, startGateway, wsClient } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

const SUBSCRIPTION = `subscription Gen($input: GenerateInput!) {
  generate(input: $input) { type generationId delta tokenCount usage { completionTokens } }
}`;
type Event = { generate: { type: string; generationId: string; delta: string | null; tokenCount: number | null; usage: { completionTokens: number } | null } };

const WORDS = [' the', ' relay', ' sends', ' tokens', ' as', ' they', ' come', ',', ' fast', ' or', ' slow', '.'];
const LONG_TOKENS = 60_000;
const LONG_REPLY = Array.from({ length: LONG_TOKENS }, (_, i) => WORDS[i % WORDS.length]).join('');

let gw: TestGateway;
beforeAll(async () => {
  const [llama] = defaultModels();
  gw = await startGateway({ emulator: { models: [llama, { ...llama, name: 'long:latest', digest: undefined, reply: LONG_REPLY }] } });
});
afterAll(async () => {
  await gw?.stop();
});

const tokenEvents = (events: GraphQLResponse<Event>[]) => events.map((e) => e.data?.generate).filter((e) => e?.type === 'TOKEN') as Event['generate'][];

describe('coalescing tokens into events', () => {
  it('sends tokens that arrive together as one event with tokenCount > 1: same text, same count (ws and SSE)', async () => {
    expect(tokenize(LONG_REPLY)).toHaveLength(LONG_TOKENS);
    const variables = { input: { model: 'long', prompt: 'Go.', options: { maxTokens: 5000 } } };
    const expected = tokenize(LONG_REPLY).slice(0, 5000);
    const client = wsClient(gw, gw.userSecret);
    const viaWs = await collect<Event>(client, SUBSCRIPTION, variables).done;
    await client.dispose();
    const viaSse = (await sse<Event>(gw, SUBSCRIPTION, variables, gw.userSecret)).events;
    for (const events of [viaWs, viaSse]) {
      const tokens = tokenEvents(events);
      expect(tokens.map((e) => e.delta).join('')).toBe(expected.join(''));
      expect(tokens.reduce((n, e) => n + e.tokenCount!, 0)).toBe(5000);
      expect(events.at(-1)?.data?.generate).toMatchObject({ type: 'DONE', usage: { completionTokens: 5000 } });
      // A fast upstream is relayed in far fewer events than tokens.
      expect(Math.max(...tokens.map((e) => e.tokenCount!))).toBeGreaterThan(1);
      expect(tokens.length).toBeLessThan(5000 / 4);
      const row = await gw.orm.getRepository(Generation).findOneByOrFail({ id: tokens[0].generationId });
      expect(row).toMatchObject({ status: 'COMPLETE', completionTokens: 5000, response: expected.join('') });
    }
  });

  it('keeps one event per token when tokens come one at a time, and sends the first token alone', async () => {
    // Slower than the pacing a busy event loop applies (a test run in parallel can make it busy).
    gw.emulator.setTokenDelay(BUSY_EVENT_INTERVAL_MS + 10);
    try {
      const client = wsClient(gw, gw.userSecret);
      const events = await collect<Event>(client, SUBSCRIPTION, { input: { model: 'llama3.2', prompt: 'Slowly.', options: { maxTokens: 6 } } }).done;
      await client.dispose();
      const tokens = tokenEvents(events);
      expect(tokens.reduce((n, e) => n + e.tokenCount!, 0)).toBe(6);
      expect(tokens[0].tokenCount).toBe(1);
      // Each token finds the client waiting (one merge tolerated on a very busy machine).
      expect(tokens.length).toBeGreaterThanOrEqual(5);
    } finally {
      gw.emulator.setTokenDelay(0);
    }
  });

  it('keeps the event loop turning during a fast stream: a cancellation from another connection stops it mid-way', async () => {
    const client = wsClient(gw, gw.userSecret);
    let generationId = '';
    let cancelledAt = 0;
    let tokensSeen = 0;
    const ended = new Promise<number>((resolve) => {
      client.subscribe<Event>(
        // Without maxTokens the reply would end at DEFAULT_MAX_TOKENS (num_predict): ask for all of it.
        { query: SUBSCRIPTION, variables: { input: { model: 'long', prompt: 'Everything.', options: { maxTokens: LONG_TOKENS } } } },
        {
          next: (r) => {
            const e = r.data?.generate;
            if (e?.type !== 'TOKEN') return;
            tokensSeen += e.tokenCount!;
            if (!generationId) {
              generationId = e.generationId;
              cancelledAt = Date.now();
              void post(gw, 'mutation($id: ID!) { cancelGeneration(id: $id) }', { id: generationId }, gw.userSecret);
            }
          },
          error: () => resolve(Date.now()),
          complete: () => resolve(Date.now()),
        },
      );
    });
    const endedAt = await ended;
    await client.dispose();
    const row = await until(async () => {
      const r = await gw.orm.getRepository(Generation).findOneByOrFail({ id: generationId });
      return r.status === 'STREAMING' ? undefined : r;
    });
    expect(row.status).toBe('CANCELLED');
    expect(row.completionTokens).toBeLessThan(LONG_TOKENS);
    expect(row.completionTokens).toBe(tokensSeen);
    expect(endedAt - cancelledAt).toBeLessThan(1000);
  });
});
