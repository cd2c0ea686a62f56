import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Message } from '../../src/entities/message.js';
import { SettingsService } from '../../src/services/platform/settings.js';
import { type GraphQLResponse, type TestGateway, collect, post, sse, startGateway, wsClient } from '../helpers/gateway.js';

const PNG_1PX = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

const CHAT = `subscription Chat($input: ChatInput!) {
  chat(input: $input) { type generationId phase queuePosition delta doneReason messageId creditsCharged usage { promptTokens completionTokens } }
}`;
interface Event {
  type: 'PHASE' | 'TOKEN' | 'DONE';
  generationId: string;
  phase: string | null;
  queuePosition: number | null;
  delta: string | null;
  doneReason: string | null;
  messageId: string | null;
  usage: { promptTokens: number; completionTokens: number } | null;
}
type ChatEvents = { chat: Event };

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
});

async function createSession(secret: string, input: Record<string, unknown>): Promise<string> {
  const { body } = await post<{ createSession: { id: string } }>(gw, 'mutation($input: CreateSessionInput!) { createSession(input: $input) { id systemPrompt } }', { input }, secret);
  expect(body.errors).toBeUndefined();
  return body.data!.createSession.id;
}

async function chatWs(input: Record<string, unknown>, secret = gw.userSecret): Promise<GraphQLResponse<ChatEvents>[]> {
  const client = wsClient(gw, secret);
  try {
    return await collect<ChatEvents>(client, CHAT, { input }).done;
  } finally {
    await client.dispose();
  }
}

const text = (results: GraphQLResponse<ChatEvents>[]) =>
  results
    .filter((r) => r.data?.chat.type === 'TOKEN')
    .map((r) => r.data!.chat.delta)
    .join('');

/** The body of the last /api/chat request the emulator received. */
function lastChatRequest(): { messages: Array<{ role: string; content: string; images?: string[] }>; options?: Record<string, unknown> } {
  return gw.emulator.requests.filter((r) => r.path === '/api/chat').at(-1)!.body as never;
}

describe('sessions: multi-turn chat', () => {
  it('sends the whole history with the system prompt to Ollama, stores every turn, and ends with the message id (graphql-ws)', async () => {
    const id = await createSession(gw.userSecret, { model: 'llama3.2', systemPrompt: 'You are terse.', title: 'first' });
    const first = await chatWs({ sessionId: id, message: 'Hello there' });
    const done1 = first.at(-1)!.data!.chat;
    expect(done1.type).toBe('DONE');
    expect(done1.messageId).toEqual(expect.any(String));
    const answer1 = text(first);
    expect(answer1.length).toBeGreaterThan(0);
    expect(lastChatRequest().messages).toEqual([
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Hello there' },
    ]);

    const second = await chatWs({ sessionId: id, message: 'And again' });
    const answer2 = text(second);
    expect(lastChatRequest().messages).toEqual([
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Hello there' },
      { role: 'assistant', content: answer1 },
      { role: 'user', content: 'And again' },
    ]);

    const { body } = await post<{ session: { title: string; messages: Array<{ id: string | null; role: string; content: string; status: string }> } }>(
      gw,
      `query($id: ID!) { session(id: $id) { title messages { id role content status } } }`,
      { id },
      gw.userSecret,
    );
    expect(body.data!.session.title).toBe('first');
    expect(body.data!.session.messages.map((m) => [m.role, m.content, m.status])).toEqual([
      ['SYSTEM', 'You are terse.', 'COMPLETE'],
      ['USER', 'Hello there', 'COMPLETE'],
      ['ASSISTANT', answer1, 'COMPLETE'],
      ['USER', 'And again', 'COMPLETE'],
      ['ASSISTANT', answer2, 'COMPLETE'],
    ]);
    expect(body.data!.session.messages[2].id).toBe(done1.messageId);
  });

  it('streams a session turn over SSE as well', async () => {
    const id = await createSession(gw.userSecret, { model: 'llama3.2' });
    const { events } = await sse<ChatEvents>(gw, CHAT, { input: { sessionId: id, message: 'Over SSE' } }, gw.userSecret);
    expect(events.at(-1)?.data?.chat).toMatchObject({ type: 'DONE', messageId: expect.any(String) });
    const rows = await gw.orm.getRepository(Message).find({ where: { sessionId: id }, order: { seq: 'ASC' } });
    expect(rows.map((m) => [m.role, m.status])).toEqual([
      ['user', 'COMPLETE'],
      ['assistant', 'COMPLETE'],
    ]);
    expect(rows[1].content).toBe(text(events as GraphQLResponse<ChatEvents>[]));
  });

  it('answers the non-streaming chat mutation with the reply and the full history', async () => {
    const id = await createSession(gw.userSecret, { model: 'llama3.2', systemPrompt: 'Sys' });
    const { body } = await post<{ chat: { text: string; message: { role: string; content: string }; history: Array<{ role: string; content: string }> } }>(
      gw,
      `mutation($input: ChatInput!) { chat(input: $input) { text message { role content } history { role content } } }`,
      { input: { sessionId: id, message: 'Question' } },
      gw.userSecret,
    );
    expect(body.errors).toBeUndefined();
    const r = body.data!.chat;
    expect(r.message).toEqual({ role: 'ASSISTANT', content: r.text });
    expect(r.history).toEqual([
      { role: 'SYSTEM', content: 'Sys' },
      { role: 'USER', content: 'Question' },
      { role: 'ASSISTANT', content: r.text },
    ]);
  });

  it('applies a new default system prompt to sessions created afterwards only', async () => {
    const settings = new SettingsService(gw.app.services.db, {});
    await settings.setDefaultSystemPrompt('Default one.');
    const before = await createSession(gw.userSecret, { model: 'llama3.2' });
    await settings.setDefaultSystemPrompt('Default two.');
    const after = await createSession(gw.userSecret, { model: 'llama3.2' });

    await chatWs({ sessionId: before, message: 'hi' });
    expect(lastChatRequest().messages[0]).toEqual({ role: 'system', content: 'Default one.' });
    await chatWs({ sessionId: after, message: 'hi' });
    expect(lastChatRequest().messages[0]).toEqual({ role: 'system', content: 'Default two.' });
    await settings.setDefaultSystemPrompt(null);
  });

  it('lists only the caller\'s sessions, newest first, with cursors; other keys get NOT_FOUND', async () => {
    const { secret: other } = await gw.app.services.keys.create({ name: 'other', role: 'USER' });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await createSession(other, { model: 'llama3.2', title: `s${i}` }));
    const page1 = await post<{ sessions: { nodes: Array<{ id: string }>; endCursor: string; hasNextPage: boolean } }>(
      gw,
      '{ sessions(first: 2) { nodes { id } endCursor hasNextPage } }',
      undefined,
      other,
    );
    expect(page1.body.data!.sessions.nodes.map((n) => n.id)).toEqual([ids[2], ids[1]]);
    expect(page1.body.data!.sessions.hasNextPage).toBe(true);
    const page2 = await post<{ sessions: { nodes: Array<{ id: string }>; hasNextPage: boolean } }>(
      gw,
      'query($after: String) { sessions(first: 2, after: $after) { nodes { id } hasNextPage } }',
      { after: page1.body.data!.sessions.endCursor },
      other,
    );
    expect(page2.body.data!.sessions.nodes.map((n) => n.id)).toEqual([ids[0]]);
    expect(page2.body.data!.sessions.hasNextPage).toBe(false);

    // The first key sees none of them and cannot use or delete them.
    const foreign = await post(gw, 'query($id: ID!) { session(id: $id) { id } }', { id: ids[0] }, gw.userSecret);
    expect(foreign.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const del = await post(gw, 'mutation($id: ID!) { deleteSession(id: $id) }', { id: ids[0] }, gw.userSecret);
    expect(del.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const use = await chatWs({ sessionId: ids[0], message: 'hijack' });
    expect(use.at(-1)?.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const mine = await post<{ sessions: { nodes: Array<{ id: string }> } }>(gw, '{ sessions(first: 100) { nodes { id } } }', undefined, gw.userSecret);
    expect(mine.body.data!.sessions.nodes.map((n) => n.id)).not.toContain(ids[0]);
  });

  it('clears a session\'s messages, changes its system prompt, and deletes it', async () => {
    const id = await createSession(gw.userSecret, { model: 'llama3.2', systemPrompt: 'Old' });
    await chatWs({ sessionId: id, message: 'one' });
    const cleared = await post<{ clearSession: { messages: Array<{ role: string }> } }>(gw, 'mutation($id: ID!) { clearSession(id: $id) { messages { role } } }', { id }, gw.userSecret);
    expect(cleared.body.data!.clearSession.messages).toEqual([{ role: 'SYSTEM' }]);
    await post(gw, 'mutation($id: ID!) { setSessionSystemPrompt(id: $id, systemPrompt: "New") { id } }', { id }, gw.userSecret);
    await chatWs({ sessionId: id, message: 'two' });
    expect(lastChatRequest().messages).toEqual([
      { role: 'system', content: 'New' },
      { role: 'user', content: 'two' },
    ]);
    const deleted = await post<{ deleteSession: boolean }>(gw, 'mutation($id: ID!) { deleteSession(id: $id) }', { id }, gw.userSecret);
    expect(deleted.body.data!.deleteSession).toBe(true);
    expect(await gw.orm.getRepository(Message).countBy({ sessionId: id })).toBe(0);
  });
});

describe('stateless chat and options', () => {
  it('accepts an OpenAI-style messages history', async () => {
    const results = await chatWs({
      model: 'llama3.2',
      messages: [
        { role: 'SYSTEM', content: 'Be kind.' },
        { role: 'USER', content: 'Hi' },
        { role: 'ASSISTANT', content: 'Hello!' },
        { role: 'USER', content: 'How are you?' },
      ],
    });
    expect(results.at(-1)?.data?.chat).toMatchObject({ type: 'DONE', messageId: null });
    expect(lastChatRequest().messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
  });

  it('sends every option to Ollama under its Ollama name', async () => {
    await chatWs({
      model: 'llama3.2',
      message: 'Options please',
      options: { temperature: 0.3, maxTokens: 5, repetitionPenalty: 1.1, topP: 0.8, topK: 20, seed: 42, stop: ['END'], numCtx: 2048 },
    });
    expect(lastChatRequest().options).toEqual({ temperature: 0.3, num_predict: 5, repeat_penalty: 1.1, top_p: 0.8, top_k: 20, seed: 42, stop: ['END'], num_ctx: 2048 });
  });

  it('refuses out-of-range options with BAD_USER_INPUT naming the field', async () => {
    const results = await chatWs({ model: 'llama3.2', message: 'x', options: { topP: 1.5 } });
    expect(results.at(-1)?.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field: 'options.topP' } });
  });
});

describe('images', () => {
  let imageServer: Server;
  let imageUrl: string;
  beforeAll(async () => {
    imageServer = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(Buffer.from(PNG_1PX, 'base64'));
    });
    await new Promise<void>((r) => imageServer.listen(0, '127.0.0.1', r));
    imageUrl = `http://127.0.0.1:${(imageServer.address() as AddressInfo).port}/pixel.png`;
  });
  afterAll(() => new Promise<void>((r) => imageServer.close(() => r())));

  it('sends base64 images (data: prefix stripped) to a vision model', async () => {
    const results = await chatWs({ model: 'llava:7b', message: 'What is this?', images: [`data:image/png;base64,${PNG_1PX}`] });
    expect(results.at(-1)?.data?.chat.type).toBe('DONE');
    expect(lastChatRequest().messages.at(-1)).toEqual({ role: 'user', content: 'What is this?', images: [PNG_1PX] });
  });

  it('accepts an image uploaded with the GraphQL multipart request spec', async () => {
    const form = new FormData();
    form.append(
      'operations',
      JSON.stringify({
        query: 'mutation($input: ChatInput!) { chat(input: $input) { text } }',
        variables: { input: { model: 'llava:7b', message: 'Uploaded', imageUploads: [null] } },
      }),
    );
    form.append('map', JSON.stringify({ 0: ['variables.input.imageUploads.0'] }));
    form.append('0', new Blob([Buffer.from(PNG_1PX, 'base64')], { type: 'image/png' }), 'pixel.png');
    const res = await fetch(gw.graphqlUrl, { method: 'POST', headers: { 'x-api-key': gw.userSecret, 'graphql-require-preflight': '1' }, body: form });
    const body = (await res.json()) as GraphQLResponse<{ chat: { text: string } }>;
    expect(body.errors).toBeUndefined();
    expect(lastChatRequest().messages.at(-1)?.images).toEqual([PNG_1PX]);
  });

  it('refuses an image URL on a loopback address (SSRF guard) without calling the model', async () => {
    const before = gw.emulator.requests.filter((r) => r.path === '/api/chat').length;
    const results = await chatWs({ model: 'llava:7b', message: 'URL', imageUrls: [imageUrl] });
    expect(results.at(-1)?.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field: 'imageUrls[0]' } });
    expect(results.at(-1)?.errors?.[0]?.message).toMatch(/not allowed/);
    expect(gw.emulator.requests.filter((r) => r.path === '/api/chat').length).toBe(before);
  });

  it('fetches a loopback image URL when configuration allows private addresses', async () => {
    const open = await startGateway({ env: { IMAGE_URL_ALLOW_PRIVATE: 'true' } });
    try {
      const client = wsClient(open, open.userSecret);
      const results = await collect<ChatEvents>(client, CHAT, { input: { model: 'llava:7b', message: 'URL', imageUrls: [imageUrl] } }).done;
      await client.dispose();
      expect(results.at(-1)?.data?.chat.type).toBe('DONE');
      const sent = open.emulator.requests.filter((r) => r.path === '/api/chat').at(-1)!.body as { messages: Array<{ images?: string[] }> };
      expect(sent.messages.at(-1)?.images).toEqual([PNG_1PX]);
    } finally {
      await open.stop();
    }
  });

  it('refuses images for a model without vision (CAPABILITY_MISSING) and non-images (BAD_USER_INPUT)', async () => {
    const noVision = await chatWs({ model: 'llama3.2', message: 'look', images: [PNG_1PX] });
    expect(noVision.at(-1)?.errors?.[0]?.extensions?.code).toBe('CAPABILITY_MISSING');
    const notImage = await chatWs({ model: 'llava:7b', message: 'look', images: [Buffer.from('plain text, not an image').toString('base64')] });
    expect(notImage.at(-1)?.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});
