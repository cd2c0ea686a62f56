import { randomUUID } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { type TestDatabase, createTestDatabase, describeEachDatabase } from '../helpers/database.js';
import { type GraphQLResponse, type TestGateway, collect, post, startGateway, wsClient } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

const CREATE_KEY = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret key { id name prefix } } }`;
const GENERATE = `mutation($input: GenerateInput!) { generate(input: $input) { generationId } }`;
const SUBSCRIPTION = `subscription($input: GenerateInput!) { generate(input: $input) { type generationId } }`;
const USAGE = `query($groupBy: UsageGroupBy!, $from: DateTime, $to: DateTime, $apiKeyId: ID) {
  usage(groupBy: $groupBy, from: $from, to: $to, apiKeyId: $apiKeyId) {
    group apiKeyId apiKeyName apiKeyPrefix model day requests completed cancelled failed inProgress promptTokens completionTokens creditsCharged
  }
}`;
const GENERATIONS = `query($first: Int, $after: String, $apiKeyId: ID) {
  generations(first: $first, after: $after, apiKeyId: $apiKeyId) { totalCount nextCursor nodes { id status errorCode model prompt response promptTokens completionTokens creditsCharged streamed createdAt } }
}`;

type Bucket = Record<string, unknown> & { group: string; requests: number; completed: number; cancelled: number; failed: number; inProgress: number; promptTokens: number; completionTokens: number; creditsCharged: number };
interface Key {
  id: string;
  name: string;
  prefix: string;
  secret: string;
}

const TRICKY = 'Say "hello, world", then\na new line — café 🦙; and a ""quoted"" comma,';

describeEachDatabase('usage log, aggregates and export', (kind) => {
  let db: TestDatabase;
  let gw: TestGateway;
  let a: Key;
  let b: Key;

  const code = (body: GraphQLResponse) => body.errors?.[0]?.extensions?.code;
  const newKey = async (name: string, credits: number): Promise<Key> => {
    const { body } = await post<{ createApiKey: { secret: string; key: { id: string; name: string; prefix: string } } }>(
      gw,
      CREATE_KEY,
      { input: { name, credits, limits: { requestsPerMinute: 0, maxConcurrentStreams: 0 } } },
      gw.adminSecret,
    );
    return { ...body.data!.createApiKey.key, secret: body.data!.createApiKey.secret };
  };
  const usage = (secret: string, variables: Record<string, unknown>) => post<{ usage: Bucket[] }>(gw, USAGE, variables, secret);
  const rowsOf = (apiKeyId: string) => gw.orm.getRepository(Generation).find({ where: { apiKeyId } });
  const sum = (rows: Generation[], f: (g: Generation) => number) => rows.reduce((n, g) => n + f(g), 0);

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    gw = await startGateway({ db: db.database });
    a = await newKey('alice, "the first"', 4);
    b = await newKey('bob', 100);

    // A: completed over HTTP and websocket, one cancelled mid-stream, one failed upstream, then out of credits.
    expect((await post(gw, GENERATE, { input: { model: 'llama3.2', prompt: TRICKY } }, a.secret)).body.errors).toBeUndefined();
    const client = wsClient(gw, a.secret);
    expect((await collect<{ generate: { type: string } }>(client, SUBSCRIPTION, { input: { model: 'qwen3:0.6b', prompt: 'over ws' } }).done).at(-1)?.data?.generate.type).toBe('DONE');
    gw.emulator.setTokenDelay(30);
    let generationId = '';
    await new Promise<void>((resolve) => {
      const stop = client.subscribe<{ generate: { type: string; generationId: string } }>(
        { query: SUBSCRIPTION, variables: { input: { model: 'llama3.2', prompt: 'leave early' } } },
        {
          next: (r) => {
            if (r.data?.generate.type === 'TOKEN') {
              generationId = r.data.generate.generationId;
              stop();
              resolve();
            }
          },
          error: () => resolve(),
          complete: () => {},
        },
      );
    });
    gw.emulator.setTokenDelay(0);
    const repo = gw.orm.getRepository(Generation);
    await until(async () => (await repo.findOneByOrFail({ id: generationId })).status !== 'STREAMING', 10_000, 'the left stream to settle');
    gw.emulator.addFault({ fault: { kind: 'status', status: 500, error: 'boom' }, path: '/api/generate', times: 1 });
    expect(code((await post(gw, GENERATE, { input: { model: 'llama3.2', prompt: 'fails' } }, a.secret)).body)).toBe('UPSTREAM_ERROR');
    // 4 credits: 1 + 1 + 1 (cancelled after tokens) spent, the failed one cost 0; so 1 left, then 0.
    expect((await post(gw, GENERATE, { input: { model: 'llama3.2', prompt: 'last credit' } }, a.secret)).body.errors).toBeUndefined();
    expect(code((await post(gw, GENERATE, { input: { model: 'llama3.2', prompt: 'broke' } }, a.secret)).body)).toBe('INSUFFICIENT_CREDITS');
    await client.dispose();

    // B: one completed generation on another model.
    expect((await post(gw, GENERATE, { input: { model: 'llava:7b', prompt: 'bob here' } }, b.secret)).body.errors).toBeUndefined();
  });
  afterAll(async () => {
    await gw?.stop();
    await db?.cleanup();
  });

  it('every request, whatever its outcome, left exactly one row', async () => {
    const rows = await rowsOf(a.id);
    const byStatus = (s: string) => rows.filter((r) => r.status === s);
    expect(rows).toHaveLength(6);
    expect(byStatus('COMPLETE')).toHaveLength(3);
    expect(byStatus('CANCELLED').map((r) => r.errorCode)).toEqual(['CANCELLED']);
    expect(byStatus('ERROR').map((r) => r.errorCode).sort()).toEqual(['INSUFFICIENT_CREDITS', 'UPSTREAM_ERROR']);
    expect(byStatus('ERROR').every((r) => r.creditsCharged === 0)).toBe(true);
    expect(rows.filter((r) => r.streamed)).toHaveLength(2);
    expect(sum(rows, (r) => r.creditsCharged)).toBe(4);
    expect((await post<{ me: { credits: number } }>(gw, '{ me { credits } }', undefined, a.secret)).body.data?.me.credits).toBe(0);
  });

  it('groups by KEY for an admin: every key, totals equal to the rows', async () => {
    const { body } = await usage(gw.adminSecret, { groupBy: 'KEY' });
    expect(body.errors).toBeUndefined();
    const buckets = new Map(body.data!.usage.map((u) => [u.group, u]));
    expect([...buckets.keys()].sort()).toEqual([a.id, b.id].sort());
    for (const key of [a, b]) {
      const rows = await rowsOf(key.id);
      expect(buckets.get(key.id)).toEqual({
        group: key.id,
        apiKeyId: key.id,
        apiKeyName: key.name,
        apiKeyPrefix: key.prefix,
        model: null,
        day: null,
        requests: rows.length,
        completed: rows.filter((r) => r.status === 'COMPLETE').length,
        cancelled: rows.filter((r) => r.status === 'CANCELLED').length,
        failed: rows.filter((r) => r.status === 'ERROR' || r.status === 'INTERRUPTED').length,
        inProgress: 0,
        promptTokens: sum(rows, (r) => r.promptTokens),
        completionTokens: sum(rows, (r) => r.completionTokens),
        creditsCharged: sum(rows, (r) => r.creditsCharged),
      });
    }
    expect(buckets.get(a.id)!.promptTokens).toBeGreaterThan(0);
  });

  it('groups by MODEL and by UTC DAY, and honours from/to', async () => {
    const byModel = (await usage(gw.adminSecret, { groupBy: 'MODEL' })).body.data!.usage;
    expect(byModel.map((u) => u.model)).toEqual(['llama3.2', 'llava:7b', 'qwen3:0.6b']);
    expect(byModel.find((u) => u.model === 'qwen3:0.6b')).toMatchObject({ requests: 1, completed: 1, creditsCharged: 1 });

    const today = new Date().toISOString().slice(0, 10);
    const byDay = (await usage(gw.adminSecret, { groupBy: 'DAY' })).body.data!.usage;
    expect(byDay).toHaveLength(1);
    expect(byDay[0]).toMatchObject({ group: today, day: today, requests: 7, creditsCharged: 5 });

    // Rows on other days land in their own UTC buckets (a row at 23:30 UTC stays on its UTC day).
    const repo = gw.orm.getRepository(Generation);
    const base = { apiKeyId: b.id, model: 'llava:7b', kind: 'generate' as const, streamed: false, prompt: 'old', status: 'COMPLETE' as const, creditsCharged: 2, promptTokens: 3, completionTokens: 4 };
    await repo.insert([
      { ...base, id: randomUUID(), createdAt: new Date('2024-02-29T23:30:00.000Z') },
      { ...base, id: randomUUID(), createdAt: new Date('2024-03-01T00:15:00.000Z') },
      { ...base, id: randomUUID(), createdAt: new Date('2024-03-01T12:00:00.000Z') },
    ]);
    const march = (await usage(gw.adminSecret, { groupBy: 'DAY', from: '2024-02-01T00:00:00Z', to: '2024-04-01T00:00:00Z' })).body.data!.usage;
    expect(march.map((u) => [u.day, u.requests, u.creditsCharged, u.completionTokens])).toEqual([
      ['2024-02-29', 1, 2, 4],
      ['2024-03-01', 2, 4, 8],
    ]);
    // `to` is exclusive, `from` inclusive.
    const edge = (await usage(gw.adminSecret, { groupBy: 'DAY', from: '2024-03-01T00:15:00.000Z', to: '2024-03-01T12:00:00.000Z' })).body.data!.usage;
    expect(edge.map((u) => u.requests)).toEqual([1]);
    expect((await usage(gw.adminSecret, { groupBy: 'KEY', from: '2999-01-01T00:00:00Z', to: '3000-01-01T00:00:00Z' })).body.data?.usage).toEqual([]);
    expect(code((await usage(gw.adminSecret, { groupBy: 'KEY', from: '2024-03-02T00:00:00Z', to: '2024-03-01T00:00:00Z' })).body)).toBe('BAD_USER_INPUT');
  });

  it('a user key sees only its own usage; naming another key is FORBIDDEN', async () => {
    const own = (await usage(a.secret, { groupBy: 'KEY' })).body.data!.usage;
    expect(own.map((u) => u.group)).toEqual([a.id]);
    const models = (await usage(a.secret, { groupBy: 'MODEL' })).body.data!.usage;
    expect(models.map((u) => u.model)).toEqual(['llama3.2', 'qwen3:0.6b']);
    expect(code((await usage(a.secret, { groupBy: 'KEY', apiKeyId: b.id })).body)).toBe('FORBIDDEN');
    // An admin may narrow to one key.
    const one = (await usage(gw.adminSecret, { groupBy: 'MODEL', apiKeyId: b.id })).body.data!.usage;
    expect(one.map((u) => u.model)).toEqual(['llava:7b']);
    expect(code((await usage('', { groupBy: 'KEY' })).body)).toBe('UNAUTHENTICATED');
  });

  it('generations: a key pages through its own log with a cursor, newest first; other keys\' logs are FORBIDDEN', async () => {
    const rows = await rowsOf(a.id);
    const seen: Array<{ id: string; createdAt: string; prompt: string }> = [];
    let after: string | null = null;
    do {
      const res: { body: GraphQLResponse<{ generations: { totalCount: number; nextCursor: string | null; nodes: Array<{ id: string; createdAt: string; prompt: string }> } }> } =
        await post(gw, GENERATIONS, { first: 4, after }, a.secret);
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data!.generations.totalCount).toBe(rows.length);
      seen.push(...res.body.data!.generations.nodes);
      after = res.body.data!.generations.nextCursor;
    } while (after);
    expect(seen.map((g) => g.id).sort()).toEqual(rows.map((r) => r.id).sort());
    const times = seen.map((g) => Date.parse(g.createdAt));
    expect([...times].sort((x, y) => y - x)).toEqual(times);
    expect(seen.find((g) => g.prompt === TRICKY)).toBeDefined();

    expect(code((await post(gw, GENERATIONS, { apiKeyId: b.id }, a.secret)).body)).toBe('FORBIDDEN');
    const forAdmin = await post<{ generations: { nodes: Array<{ id: string }> } }>(gw, GENERATIONS, { apiKeyId: b.id, first: 50 }, gw.adminSecret);
    expect(forAdmin.body.data!.generations.nodes.length).toBe((await rowsOf(b.id)).length);
    expect(code((await post(gw, GENERATIONS, { after: 'garbage' }, a.secret)).body)).toBe('BAD_USER_INPUT');
    expect(code((await post(gw, GENERATIONS, { first: 1000 }, a.secret)).body)).toBe('BAD_USER_INPUT');
  });

  it('exports conversations as streamed CSV that parses back exactly (commas, quotes, newlines, unicode)', async () => {
    const res = await fetch(`${gw.url}/export/conversations.csv`, { headers: { 'x-api-key': gw.adminSecret } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-length')).toBeNull(); // streamed (chunked), not built in memory first
    const text = await res.text();
    const records: Array<Record<string, string>> = parse(text, { columns: true });
    const all = await gw.orm.getRepository(Generation).find({ order: { createdAt: 'ASC', id: 'ASC' } });
    expect(records.map((r) => r.generation_id)).toEqual(all.map((g) => g.id));
    expect(Object.keys(records[0])).toEqual([
      'timestamp', 'key_name', 'key_prefix', 'model', 'kind', 'session_id', 'status', 'error_code',
      'prompt', 'response', 'prompt_tokens', 'completion_tokens', 'credits_charged', 'generation_id',
    ]);
    const tricky = records.find((r) => r.prompt === TRICKY)!;
    const row = all.find((g) => g.prompt === TRICKY)!;
    expect(tricky).toMatchObject({
      key_name: 'alice, "the first"',
      key_prefix: a.prefix,
      model: 'llama3.2',
      status: 'COMPLETE',
      response: row.response,
      prompt_tokens: String(row.promptTokens),
      completion_tokens: String(row.completionTokens),
      timestamp: row.createdAt.toISOString(),
      error_code: '',
    });
    expect(row.response).toContain('🦙'); // the emulator's reply is multibyte too
    expect(records.find((r) => r.error_code === 'INSUFFICIENT_CREDITS')?.prompt).toBe('broke');

    // from/to narrow the export.
    const narrowed = await fetch(`${gw.url}/export/conversations.csv?from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z`, { headers: { authorization: `Bearer ${gw.adminSecret}` } });
    expect(parse(await narrowed.text(), { columns: true })).toHaveLength(2);
  });

  it('streams a large export in batches without losing or repeating rows', async () => {
    const repo = gw.orm.getRepository(Generation);
    // Same timestamp for many rows: the keyset cursor must break ties by id.
    const at = new Date('2023-06-01T00:00:00.000Z');
    const rows = Array.from({ length: 1234 }, (_, i) => ({
      id: randomUUID(), apiKeyId: b.id, model: 'bulk', kind: 'generate' as const, streamed: false, prompt: `bulk ${i}`, status: 'COMPLETE' as const,
      createdAt: i % 3 === 0 ? at : new Date(at.getTime() + i),
    }));
    for (let i = 0; i < rows.length; i += 200) await repo.insert(rows.slice(i, i + 200));
    const res = await fetch(`${gw.url}/export/conversations.csv?from=2023-01-01T00:00:00Z&to=2024-01-01T00:00:00Z`, { headers: { 'x-api-key': gw.adminSecret } });
    const records: Array<Record<string, string>> = parse(await res.text(), { columns: true });
    expect(records).toHaveLength(1234);
    expect(new Set(records.map((r) => r.generation_id)).size).toBe(1234);
    const times = records.map((r) => Date.parse(r.timestamp));
    expect([...times].sort((x, y) => x - y)).toEqual(times);
  });

  it('refuses the export to non-admins (403 FORBIDDEN), without a key (401) and with bad dates (400)', async () => {
    const asUser = await fetch(`${gw.url}/export/conversations.csv`, { headers: { 'x-api-key': a.secret } });
    expect(asUser.status).toBe(403);
    expect(((await asUser.json()) as GraphQLResponse).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const anonymous = await fetch(`${gw.url}/export/conversations.csv`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as GraphQLResponse).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const badDate = await fetch(`${gw.url}/export/conversations.csv?from=yesterday`, { headers: { 'x-api-key': gw.adminSecret } });
    expect(badDate.status).toBe(400);
    expect(((await badDate.json()) as GraphQLResponse).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});
