import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { Session } from '../../src/entities/session.js';
import { type GraphQLResponse, type TestGateway, post, startGateway, wsClient } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

const CREATE_KEY = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret key { id } } }`;

let gw: TestGateway;
let a: { id: string; secret: string };
let b: { id: string; secret: string };
let bSession: string;
let bGeneration: string;

const code = (body: GraphQLResponse) => body.errors?.[0]?.extensions?.code;

beforeAll(async () => {
  gw = await startGateway();
  const make = async (name: string) => {
    const { body } = await post<{ createApiKey: { secret: string; key: { id: string } } }>(gw, CREATE_KEY, { input: { name } }, gw.adminSecret);
    return { id: body.data!.createApiKey.key.id, secret: body.data!.createApiKey.secret };
  };
  a = await make('key A');
  b = await make('key B');
  const session = await post<{ createSession: { id: string } }>(gw, `mutation { createSession(input: { model: "llama3.2", title: "B's secrets" }) { id } }`, undefined, b.secret);
  bSession = session.body.data!.createSession.id;
  const chat = await post<{ chat: { generationId: string } }>(
    gw,
    `mutation($input: ChatInput!) { chat(input: $input) { generationId } }`,
    { input: { sessionId: bSession, message: 'Only B may read this.' } },
    b.secret,
  );
  expect(chat.body.errors).toBeUndefined();
  bGeneration = chat.body.data!.chat.generationId;
});
afterAll(async () => {
  await gw?.stop();
});

describe('key A cannot read, use or delete anything of key B', () => {
  it('sessions: not listed, not readable, not changeable, not deletable, not usable for chat', async () => {
    const listed = await post<{ sessions: { nodes: Array<{ id: string }> } }>(gw, '{ sessions { nodes { id } } }', undefined, a.secret);
    expect(listed.body.data?.sessions.nodes.map((s) => s.id)).not.toContain(bSession);
    expect(code((await post(gw, 'query($id: ID!) { session(id: $id) { id title } }', { id: bSession }, a.secret)).body)).toBe('NOT_FOUND');
    expect(code((await post(gw, 'mutation($id: ID!) { setSessionSystemPrompt(id: $id, systemPrompt: "pwned") { id } }', { id: bSession }, a.secret)).body)).toBe('NOT_FOUND');
    expect(code((await post(gw, 'mutation($id: ID!) { clearSession(id: $id) { id } }', { id: bSession }, a.secret)).body)).toBe('NOT_FOUND');
    expect(code((await post(gw, 'mutation($id: ID!) { deleteSession(id: $id) }', { id: bSession }, a.secret)).body)).toBe('NOT_FOUND');
    const upstreamBefore = gw.emulator.requests.length;
    const chat = await post(gw, 'mutation($input: ChatInput!) { chat(input: $input) { text } }', { input: { sessionId: bSession, message: 'let me in' } }, a.secret);
    expect(code(chat.body)).toBe('NOT_FOUND');
    expect(gw.emulator.requests.length).toBe(upstreamBefore);

    // B's session is intact, as B sees it.
    const session = await gw.orm.getRepository(Session).findOneByOrFail({ id: bSession });
    expect(session).toMatchObject({ apiKeyId: b.id, title: "B's secrets", systemPrompt: null });
    const own = await post<{ session: { messages: Array<{ content: string }> } }>(gw, 'query($id: ID!) { session(id: $id) { messages { content } } }', { id: bSession }, b.secret);
    expect(own.body.data?.session.messages.map((m) => m.content)).toContain('Only B may read this.');
  });

  it('usage and generations: only its own, FORBIDDEN when naming B', async () => {
    const usage = await post<{ usage: Array<{ group: string }> }>(gw, '{ usage(groupBy: KEY) { group } }', undefined, a.secret);
    expect(usage.body.data?.usage.map((u) => u.group)).not.toContain(b.id);
    expect(code((await post(gw, 'query($id: ID!) { usage(groupBy: MODEL, apiKeyId: $id) { group } }', { id: b.id }, a.secret)).body)).toBe('FORBIDDEN');
    const log = await post<{ generations: { nodes: Array<{ id: string }> } }>(gw, '{ generations(first: 200) { nodes { id } } }', undefined, a.secret);
    expect(log.body.data?.generations.nodes.map((g) => g.id)).not.toContain(bGeneration);
    expect(code((await post(gw, 'query($id: ID!) { generations(apiKeyId: $id) { totalCount } }', { id: b.id }, a.secret)).body)).toBe('FORBIDDEN');
  });

  it('cannot cancel B\'s running generation', async () => {
    gw.emulator.setTokenDelay(20);
    const client = wsClient(gw, b.secret);
    try {
      let id = '';
      const events: string[] = [];
      const done = new Promise<void>((resolve, reject) => {
        client.subscribe<{ generate: { type: string; generationId: string } }>(
          { query: 'subscription { generate(input: { model: "llama3.2", prompt: "B streams on" }) { type generationId } }' },
          { next: (r) => ((id ||= r.data!.generate.generationId), events.push(r.data!.generate.type)), error: reject, complete: resolve },
        );
      });
      await until(() => events.includes('TOKEN'), 10_000, "the stream's first token");
      const attempt = await post(gw, 'mutation($id: ID!) { cancelGeneration(id: $id) }', { id }, a.secret);
      expect(code(attempt.body)).toBe('NOT_FOUND');
      await done;
      expect(events.at(-1)).toBe('DONE');
      expect((await gw.orm.getRepository(Generation).findOneByOrFail({ id })).status).toBe('COMPLETE');
    } finally {
      gw.emulator.setTokenDelay(0);
      await client.dispose();
    }
  });

  it('spends only its own credits', async () => {
    const repo = gw.orm.getRepository(ApiKey);
    const before = (await repo.findOneByOrFail({ id: b.id })).credits;
    expect((await post(gw, 'mutation { generate(input: { model: "llama3.2", prompt: "on my own dime" }) { text } }', undefined, a.secret)).body.errors).toBeUndefined();
    expect((await repo.findOneByOrFail({ id: b.id })).credits).toBe(before);
  });
});

describe('user keys get FORBIDDEN on admin fields', () => {
  it.each([
    ['apiKeys', '{ apiKeys { totalCount } }', undefined],
    ['createApiKey', 'mutation { createApiKey(input: { name: "mine" }) { secret } }', undefined],
    ['updateApiKey', 'mutation($id: ID!) { updateApiKey(input: { id: $id, role: ADMIN }) { role } }', 'self'],
    ['addCredits', 'mutation($id: ID!) { addCredits(input: { id: $id, amount: 1000 }) { credits } }', 'self'],
    ['revokeApiKey', 'mutation($id: ID!) { revokeApiKey(id: $id) { id } }', 'other'],
  ])('%s', async (_field, query, target) => {
    const variables = target ? { id: target === 'self' ? a.id : b.id } : undefined;
    const res = await post(gw, query, variables, a.secret);
    expect(code(res.body)).toBe('FORBIDDEN');
    expect(res.body.data ?? null).toBeNull();
    const keyA = await gw.orm.getRepository(ApiKey).findOneByOrFail({ id: a.id });
    expect(keyA.role).toBe('USER');
    expect((await gw.orm.getRepository(ApiKey).findOneByOrFail({ id: b.id })).revokedAt).toBeNull();
  });

  it('and UNAUTHENTICATED without a key', async () => {
    expect(code((await post(gw, '{ apiKeys { totalCount } }')).body)).toBe('UNAUTHENTICATED');
    expect(code((await post(gw, '{ usage(groupBy: KEY) { group } }')).body)).toBe('UNAUTHENTICATED');
  });
});
