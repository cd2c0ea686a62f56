import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Message } from '../../src/entities/message.js';
import { type GraphQLResponse, type TestGateway, collect, post, sse, startGateway, wsClient } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

const CHAT = `subscription Chat($input: ChatInput!) {
  chat(input: $input) { type generationId phase queuePosition delta tokenCount messageId }
}`;
interface Event {
  type: 'PHASE' | 'TOKEN' | 'DONE';
  generationId: string;
  phase: string | null;
  queuePosition: number | null;
  delta: string | null;
  tokenCount: number | null;
  messageId: string | null;
}
type ChatEvents = { chat: Event };

let gw: TestGateway;
beforeAll(async () => {
  // Slow tokens keep streams running; one generation per model at a time shows the queue.
  gw = await startGateway({ env: { OLLAMA_NUM_PARALLEL: '1' }, emulator: { tokenDelayMs: 30 } });
});
afterEach(() => gw.emulator.clearFaults());
afterAll(async () => {
  await gw?.stop();
});

async function createSession(): Promise<string> {
  const { body } = await post<{ createSession: { id: string } }>(gw, 'mutation { createSession(input: { model: "llama3.2" }) { id } }', undefined, gw.userSecret);
  return body.data!.createSession.id;
}

const messagesOf = (sessionId: string) => gw.orm.getRepository(Message).find({ where: { sessionId }, order: { seq: 'ASC' } });


/** Subscribes and returns live results plus a way to stop. */
function open(input: Record<string, unknown>, secret = gw.userSecret) {
  const client = wsClient(gw, secret);
  const sub = collect<ChatEvents>(client, CHAT, { input });
  const tokens = () => sub.results.filter((r) => r.data?.chat.type === 'TOKEN');
  return { client, ...sub, tokens };
}

describe('phases before the first token', () => {
  it('reports LOADING_MODEL for a model that is not in memory, then GENERATING, then tokens', async () => {
    // Nothing is loaded in a fresh emulator; unload to be sure.
    await gw.app.services.pool.primary.upstream.setResidency('llava:7b', 0);
    const client = wsClient(gw, gw.userSecret);
    const results = await collect<ChatEvents>(client, CHAT, { input: { model: 'llava:7b', message: 'Hi' } }).done;
    await client.dispose();
    const kinds = results.map((r) => (r.data!.chat.type === 'PHASE' ? r.data!.chat.phase : r.data!.chat.type));
    const firstToken = kinds.indexOf('TOKEN');
    expect(kinds.slice(0, firstToken)).toEqual(['LOADING_MODEL', 'GENERATING']);
    expect(kinds.at(-1)).toBe('DONE');
  });

  it('reports QUEUED with positions while the per-model limit makes a request wait', async () => {
    const a = open({ model: 'llama3.2', message: 'first' });
    await until(() => (a.tokens().length > 0 ? true : undefined));
    const b = open({ model: 'llama3.2', message: 'second' });
    const c = open({ model: 'llama3.2', message: 'third' });
    await until(() => (c.results.some((r) => r.data?.chat.phase === 'QUEUED') ? true : undefined));
    const bPhases = () => b.results.filter((r) => r.data?.chat.type === 'PHASE').map((r) => [r.data!.chat.phase, r.data!.chat.queuePosition]);
    const cPhases = () => c.results.filter((r) => r.data?.chat.type === 'PHASE').map((r) => [r.data!.chat.phase, r.data!.chat.queuePosition]);
    expect(bPhases()[0]).toEqual(['QUEUED', 1]);
    expect(cPhases()[0]).toEqual(['QUEUED', 2]);
    // A queued request reaches Ollama only once it holds a slot.
    const asked = (text: string) => gw.emulator.requests.some((r) => r.path === '/api/chat' && JSON.stringify(r.body).includes(text));
    expect(asked('first')).toBe(true);
    expect(asked('second')).toBe(false);
    expect(asked('third')).toBe(false);
    a.cancel();
    await Promise.all([b.done, c.done]);
    expect(bPhases().at(-1)).toEqual(['GENERATING', null]);
    // c moved up to position 1 when a left, then ran.
    expect(cPhases()).toContainEqual(['QUEUED', 1]);
    expect(c.results.at(-1)?.data?.chat.type).toBe('DONE');
    expect(asked('second') && asked('third')).toBe(true);
    await Promise.all([a.client.dispose(), b.client.dispose(), c.client.dispose()]);
  });
});

describe('cancellation and errors in a session', () => {
  it('stores the partial answer as CANCELLED when the client leaves mid-stream, and Ollama sees the request closed', async () => {
    const sessionId = await createSession();
    gw.emulator.setTokenDelay(250); // slower than the file's 30 ms, so "at once" has room on a busy machine
    const s = open({ sessionId, message: 'Tell me a long story' });
    await until(() => (s.tokens().length >= 3 ? true : undefined), 10_000);
    const upstream = gw.emulator.requests.filter((r) => r.path === '/api/chat').at(-1)!;
    const partial = s.tokens().map((r) => r.data!.chat.delta).join('');
    const leftAt = Date.now();
    await s.client.dispose();
    const closed = await gw.emulator.waitForOutcome(upstream.id, 'client-closed', 5000);
    // At once, not when the reply ends: the ~25 tokens left take ~6 s at 250 ms/token.
    expect(closed.endedAt! - leftAt).toBeLessThan(3000);
    gw.emulator.setTokenDelay(30);
    const [user, assistant] = await until(async () => {
      const rows = await messagesOf(sessionId);
      return rows[1]?.status === 'STREAMING' ? undefined : rows;
    });
    expect(user).toMatchObject({ role: 'user', content: 'Tell me a long story', status: 'COMPLETE' });
    expect(assistant.status).toBe('CANCELLED');
    expect(assistant.content.startsWith(partial)).toBe(true);
    expect(assistant.content.length).toBeGreaterThan(0);
  });

  it('stores the partial answer as ERROR and sends a typed error when Ollama fails mid-stream (SSE)', async () => {
    const sessionId = await createSession();
    gw.emulator.addFault({ fault: { kind: 'errorAfter', tokens: 3, error: 'model runner crashed' }, path: '/api/chat', times: 1 });
    const { events } = await sse<ChatEvents>(gw, CHAT, { input: { sessionId, message: 'Go' } }, gw.userSecret);
    const tokens = events.filter((e) => e.data?.chat.type === 'TOKEN');
    // Three tokens, in as many events or fewer: a busy gateway coalesces tokens into one event.
    expect(tokens.length).toBeGreaterThan(0);
    expect(tokens.reduce((n, t) => n + (t.data!.chat.tokenCount ?? 0), 0)).toBe(3);
    expect(events.at(-1)?.errors?.[0]?.extensions?.code).toBe('UPSTREAM_ERROR');
    const rows = await messagesOf(sessionId);
    expect(rows[1]).toMatchObject({ role: 'assistant', status: 'ERROR', errorCode: 'UPSTREAM_ERROR', content: tokens.map((t) => t.data!.chat.delta).join('') });
  });

  it('cancelGeneration stops a stream from another connection of the same key, and only that key', async () => {
    const s = open({ model: 'llama3.2', message: 'Long answer please' });
    const generationId = await until(() => s.tokens()[0]?.data?.chat.generationId);
    const { secret: stranger } = await gw.app.services.keys.create({ name: 'stranger', role: 'USER' });
    const denied = await post(gw, 'mutation($id: ID!) { cancelGeneration(id: $id) }', { id: generationId }, stranger);
    expect(denied.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const ok = await post<{ cancelGeneration: boolean }>(gw, 'mutation($id: ID!) { cancelGeneration(id: $id) }', { id: generationId }, gw.userSecret);
    expect(ok.body.data?.cancelGeneration).toBe(true);
    const results = await s.done;
    expect(results.at(-1)?.data?.chat.type).not.toBe('DONE');
    await s.client.dispose();
    const again = await post(gw, 'mutation($id: ID!) { cancelGeneration(id: $id) }', { id: generationId }, gw.userSecret);
    expect(again.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('refuses a second stream in the same session while the first runs, keeping history in order', async () => {
    const sessionId = await createSession();
    const first = open({ sessionId, message: 'first' });
    await until(() => (first.tokens().length > 0 ? true : undefined));
    const second = await (async () => {
      const client = wsClient(gw, gw.userSecret);
      const r = await collect<ChatEvents>(client, CHAT, { input: { sessionId, message: 'second' } }).done;
      await client.dispose();
      return r;
    })();
    expect(second.at(-1)?.errors?.[0]?.extensions?.code).toBe('SESSION_BUSY');
    const done = await first.done;
    expect(done.at(-1)?.data?.chat.type).toBe('DONE');
    await first.client.dispose();
    const rows = await messagesOf(sessionId);
    expect(rows.map((m) => [m.seq, m.role, m.content === 'first' || m.role === 'assistant'])).toEqual([
      [1, 'user', true],
      [2, 'assistant', true],
    ]);
    // Once the first is done, the session takes the next turn.
    const client = wsClient(gw, gw.userSecret);
    const third: GraphQLResponse<ChatEvents>[] = await collect<ChatEvents>(client, CHAT, { input: { sessionId, message: 'third' } }).done;
    await client.dispose();
    expect(third.at(-1)?.data?.chat.type).toBe('DONE');
    expect((await messagesOf(sessionId)).map((m) => m.seq)).toEqual([1, 2, 3, 4]);
  });
});
