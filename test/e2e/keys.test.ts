import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { hashSecret } from '../../src/services/access/keys.js';
import { type GraphQLResponse, type TestGateway, post, startGateway } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

const KEY_FIELDS = 'id name prefix role credits createdAt lastUsedAt revokedAt active limits { requestsPerMinute tokensPerMinute maxConcurrentStreams } customLimits { requestsPerMinute tokensPerMinute maxConcurrentStreams }';
const CREATE_KEY = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret key { ${KEY_FIELDS} } } }`;
const ADD_CREDITS = `mutation($input: AddCreditsInput!) { addCredits(input: $input) { id credits } }`;
const UPDATE_KEY = `mutation($input: UpdateApiKeyInput!) { updateApiKey(input: $input) { id name role customLimits { requestsPerMinute tokensPerMinute maxConcurrentStreams } } }`;
const LIST = `query($first: Int, $offset: Int, $includeRevoked: Boolean) { apiKeys(first: $first, offset: $offset, includeRevoked: $includeRevoked) { totalCount hasMore nodes { id name active } } }`;

interface KeyView {
  id: string;
  name: string;
  prefix: string;
  role: string;
  credits: number;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
  active: boolean;
  limits: Record<string, number>;
  customLimits: Record<string, number | null>;
}

let gw: TestGateway;
const secrets: string[] = [];
beforeAll(async () => {
  gw = await startGateway();
  secrets.push(gw.adminSecret, gw.userSecret);
});
afterAll(async () => {
  await gw?.stop();
});

const code = (body: GraphQLResponse) => body.errors?.[0]?.extensions?.code;

async function create(input: Record<string, unknown>, secret = gw.adminSecret) {
  const res = await post<{ createApiKey: { secret: string; key: KeyView } }>(gw, CREATE_KEY, { input }, secret);
  if (res.body.data?.createApiKey) secrets.push(res.body.data.createApiKey.secret);
  return res.body;
}

describe('createApiKey', () => {
  it('returns a recognisable secret with at least 128 random bits, once, with defaults from configuration', async () => {
    const body = await create({ name: '  Ada  ' });
    expect(body.errors).toBeUndefined();
    const { secret, key } = body.data!.createApiKey;
    expect(secret).toMatch(/^llmgw_[A-Za-z0-9_-]{43}$/); // 32 random bytes, base64url
    expect(key).toMatchObject({
      name: 'Ada',
      role: 'USER',
      credits: 500,
      active: true,
      revokedAt: null,
      lastUsedAt: null,
      limits: { requestsPerMinute: 120, tokensPerMinute: 200_000, maxConcurrentStreams: 8 },
      customLimits: { requestsPerMinute: null, tokensPerMinute: null, maxConcurrentStreams: null },
    });
    expect(secret.startsWith(key.prefix)).toBe(true);
    expect(key.prefix.length).toBeLessThan(secret.length / 2);
    expect(Date.now() - Date.parse(key.createdAt)).toBeLessThan(10_000);

    // The secret works, and `me` shows the same key without the secret anywhere.
    const me = await post<{ me: Record<string, unknown> }>(gw, `{ me { id name prefix role credits createdAt limits { requestsPerMinute } } }`, undefined, secret);
    expect(me.body.data?.me).toMatchObject({ id: key.id, name: 'Ada', role: 'USER', credits: 500, limits: { requestsPerMinute: 120 } });
    expect(JSON.stringify(me.body)).not.toContain(secret);
    // lastUsedAt is recorded (asynchronously, at most once a minute).
    const repo = gw.orm.getRepository(ApiKey);
    await until(async () => (await repo.findOneByOrFail({ id: key.id })).lastUsedAt, 10_000, 'lastUsedAt to be recorded');
    expect((await repo.findOneByOrFail({ id: key.id })).lastUsedAt).toBeInstanceOf(Date);
    // Two keys never share a secret.
    const other = await create({ name: 'Ada 2' });
    expect(other.data!.createApiKey.secret).not.toBe(secret);
  });

  it('accepts role, credits and limits', async () => {
    const body = await create({ name: 'ops', role: 'ADMIN', credits: 0, limits: { requestsPerMinute: 10, tokensPerMinute: 0, maxConcurrentStreams: 1 } });
    expect(body.data?.createApiKey.key).toMatchObject({
      role: 'ADMIN',
      credits: 0,
      limits: { requestsPerMinute: 10, tokensPerMinute: 0, maxConcurrentStreams: 1 },
      customLimits: { requestsPerMinute: 10, tokensPerMinute: 0, maxConcurrentStreams: 1 },
    });
  });

  it.each([
    [{ name: '' }, 'name'],
    [{ name: '   ' }, 'name'],
    [{ name: 'x'.repeat(201) }, 'name'],
    [{ name: 'bell\u0007' }, 'name'],
    [{ name: 'neg', credits: -1 }, 'credits'],
    [{ name: 'huge', credits: 2_000_000_000 }, 'credits'],
    [{ name: 'lim', limits: { requestsPerMinute: -5 } }, 'limits.requestsPerMinute'],
    [{ name: 'lim', limits: { maxConcurrentStreams: 1_500_000_000 } }, 'limits.maxConcurrentStreams'],
  ])('refuses %j with BAD_USER_INPUT naming %s', async (input, field) => {
    const before = await gw.orm.getRepository(ApiKey).count();
    const body = await create(input);
    expect(code(body)).toBe('BAD_USER_INPUT');
    expect(body.errors?.[0]?.extensions?.field).toBe(field);
    expect(await gw.orm.getRepository(ApiKey).count()).toBe(before);
  });
});

describe('apiKeys', () => {
  it('pages through every key with a total, newest first, and can leave revoked keys out', async () => {
    for (let i = 0; i < 5; i++) await create({ name: `page ${i}` });
    const all = await gw.orm.getRepository(ApiKey).count();
    const seen: string[] = [];
    for (let offset = 0; ; offset += 3) {
      const { body } = await post<{ apiKeys: { totalCount: number; hasMore: boolean; nodes: Array<{ id: string }> } }>(gw, LIST, { first: 3, offset }, gw.adminSecret);
      expect(body.data!.apiKeys.totalCount).toBe(all);
      seen.push(...body.data!.apiKeys.nodes.map((n) => n.id));
      expect(body.data!.apiKeys.hasMore).toBe(seen.length < all);
      if (!body.data!.apiKeys.hasMore) break;
    }
    expect(new Set(seen).size).toBe(all);
    const first = await post<{ apiKeys: { nodes: Array<{ name: string }> } }>(gw, LIST, { first: 1 }, gw.adminSecret);
    expect(first.body.data!.apiKeys.nodes[0].name).toBe('page 4');

    const victim = seen[0];
    await post(gw, `mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: victim }, gw.adminSecret);
    const active = await post<{ apiKeys: { totalCount: number; nodes: Array<{ id: string; active: boolean }> } }>(gw, LIST, { first: 500, includeRevoked: false }, gw.adminSecret);
    expect(active.body.data!.apiKeys.totalCount).toBe(all - 1);
    expect(active.body.data!.apiKeys.nodes.map((n) => n.id)).not.toContain(victim);
    expect(code((await post(gw, LIST, { first: 0 }, gw.adminSecret)).body)).toBe('BAD_USER_INPUT');
  });
});

describe('updateApiKey and addCredits', () => {
  it('renames, changes role and limits; unknown ids are NOT_FOUND', async () => {
    const { key } = (await create({ name: 'before' })).data!.createApiKey;
    const changed = await post<{ updateApiKey: Record<string, unknown> }>(
      gw,
      UPDATE_KEY,
      { input: { id: key.id, name: 'after', role: 'ADMIN', limits: { tokensPerMinute: 5000 } } },
      gw.adminSecret,
    );
    expect(changed.body.data?.updateApiKey).toEqual({
      id: key.id,
      name: 'after',
      role: 'ADMIN',
      customLimits: { requestsPerMinute: null, tokensPerMinute: 5000, maxConcurrentStreams: null },
    });
    const back = await post<{ updateApiKey: Record<string, unknown> }>(gw, UPDATE_KEY, { input: { id: key.id, role: 'USER', limits: { tokensPerMinute: null } } }, gw.adminSecret);
    expect(back.body.data?.updateApiKey).toMatchObject({ name: 'after', role: 'USER', customLimits: { tokensPerMinute: null } });
    expect(code((await post(gw, UPDATE_KEY, { input: { id: key.id, name: '' } }, gw.adminSecret)).body)).toBe('BAD_USER_INPUT');
    expect(code((await post(gw, UPDATE_KEY, { input: { id: '00000000-0000-4000-8000-000000000000', name: 'x' } }, gw.adminSecret)).body)).toBe('NOT_FOUND');
  });

  it('adds and takes away credits atomically, never below zero', async () => {
    const { key } = (await create({ name: 'wallet', credits: 10 })).data!.createApiKey;
    const add = (amount: number) => post<{ addCredits: { credits: number } }>(gw, ADD_CREDITS, { input: { id: key.id, amount } }, gw.adminSecret);
    expect((await add(90)).body.data?.addCredits.credits).toBe(100);
    expect((await add(-30)).body.data?.addCredits.credits).toBe(70);
    const tooMuch = await add(-71);
    expect(code(tooMuch.body)).toBe('BAD_USER_INPUT');
    expect(tooMuch.body.errors?.[0]?.message).toMatch(/70 credits/);
    expect(code((await add(0)).body)).toBe('BAD_USER_INPUT');
    expect(code((await add(1_000_000_000)).body)).toBe('BAD_USER_INPUT'); // would pass the cap

    // 40 concurrent grants of 1 and 40 concurrent takes of 2 from 70: every grant lands, takes only while covered.
    const results = await Promise.all([...Array.from({ length: 40 }, () => add(1)), ...Array.from({ length: 40 }, () => add(-2))]);
    const takes = results.slice(40).filter((r) => !r.body.errors).length;
    const balance = (await gw.orm.getRepository(ApiKey).findOneByOrFail({ id: key.id })).credits;
    expect(results.slice(0, 40).every((r) => !r.body.errors)).toBe(true);
    expect(balance).toBe(70 + 40 - 2 * takes);
    expect(balance).toBeGreaterThanOrEqual(0);
  });

  it('never leaves the gateway without an active admin key', async () => {
    // The bootstrap admin plus the admin created above ("ops"): revoke "ops", then the last one is protected.
    const admins = await gw.orm.getRepository(ApiKey).find({ where: { role: 'ADMIN' } });
    const bootstrap = admins.find((a) => a.secretHash === hashSecret(gw.adminSecret))!;
    for (const other of admins.filter((a) => a.id !== bootstrap.id && !a.revokedAt)) {
      const res = await post(gw, `mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: other.id }, gw.adminSecret);
      expect(res.body.errors).toBeUndefined();
    }
    const revokeSelf = await post(gw, `mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: bootstrap.id }, gw.adminSecret);
    expect(code(revokeSelf.body)).toBe('FORBIDDEN');
    expect(revokeSelf.body.errors?.[0]?.message).toMatch(/last active admin/);
    const demote = await post(gw, UPDATE_KEY, { input: { id: bootstrap.id, role: 'USER' } }, gw.adminSecret);
    expect(code(demote.body)).toBe('FORBIDDEN');
    expect((await post(gw, '{ me { role } }', undefined, gw.adminSecret)).body.data).toEqual({ me: { role: 'ADMIN' } });
  });
});

describe('storage', () => {
  it('the database files never hold a plaintext key, only sha256 hashes', async () => {
    const rows = await gw.orm.getRepository(ApiKey).find();
    expect(rows.length).toBe(secrets.length);
    const hashes = new Set(secrets.map(hashSecret));
    for (const row of rows) expect(hashes.has(row.secretHash)).toBe(true);
    // Every byte on disk: the SQLite file, its WAL and shared memory.
    const files = readdirSync(gw.dir).filter((f) => f.startsWith('gateway.sqlite'));
    expect(files).toContain('gateway.sqlite');
    const disk = files.map((f) => readFileSync(join(gw.dir, f)).toString('latin1')).join('\n');
    expect(disk).toContain(rows[0].secretHash); // the scan does see table contents
    for (const secret of secrets) {
      expect(disk).not.toContain(secret);
      expect(disk).not.toContain(secret.slice(14)); // nor the part after the display prefix
    }
  });
});
