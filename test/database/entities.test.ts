import { randomBytes } from 'node:crypto';
import { QueryFailedError } from 'typeorm';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { Message } from '../../src/entities/message.js';
import { ModelEntry } from '../../src/entities/model-entry.js';
import { Session } from '../../src/entities/session.js';
import { Setting } from '../../src/entities/setting.js';
import { createTestDatabase, describeEachDatabase } from '../helpers/database.js';
import type { TestDatabase } from '../helpers/database.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const at = (iso: string) => new Date(iso);

describeEachDatabase('entities', (kind) => {
  let db: TestDatabase;
  let ds: DataSource;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    ds = db.orm;
  });
  afterAll(() => db?.cleanup());

  const uniqueViolation = kind === 'sqlite' ? 'SQLITE_CONSTRAINT_UNIQUE' : '23505';
  const foreignKeyViolation = kind === 'sqlite' ? 'SQLITE_CONSTRAINT_FOREIGNKEY' : '23503';

  const newKey = (overrides: Partial<ApiKey> = {}) =>
    ds.getRepository(ApiKey).save(
      ds.getRepository(ApiKey).create({
        name: 'key',
        prefix: 'gw_test',
        secretHash: randomBytes(32).toString('hex'),
        role: 'USER',
        ...overrides,
      }),
    );
  const newSession = (apiKeyId: string) =>
    ds.getRepository(Session).save(ds.getRepository(Session).create({ apiKeyId, model: 'llama3.2:1b' }));
  const newMessage = (sessionId: string, seq: number) =>
    ds.getRepository(Message).save(
      ds.getRepository(Message).create({ sessionId, seq, role: 'user', content: `turn ${seq}`, status: 'COMPLETE' }),
    );
  const newGeneration = (apiKeyId: string, sessionId: string | null) =>
    ds.getRepository(Generation).save(
      ds.getRepository(Generation).create({
        apiKeyId,
        sessionId,
        model: 'llama3.2:1b',
        kind: 'chat',
        streamed: false,
        prompt: 'hi',
        status: 'COMPLETE',
      }),
    );
  const rejectsWith = async (promise: Promise<unknown>, code: string) => {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(QueryFailedError);
    expect((error as QueryFailedError & { code?: string }).code).toBe(code);
  };

  it('ApiKey: round-trips every column, with defaults, ids and ms-precise dates', async () => {
    const repo = ds.getRepository(ApiKey);
    const key = repo.create({
      name: 'Ada',
      prefix: 'gw_ab12',
      secretHash: 'a'.repeat(64),
      role: 'ADMIN',
      credits: 1234,
      requestsPerMinute: 60,
      tokensPerMinute: 10_000,
      maxConcurrentStreams: 2,
      createdAt: at('2026-01-02T03:04:05.678Z'),
      lastUsedAt: at('2026-01-02T03:04:06.001Z'),
      revokedAt: at('2026-12-31T23:59:59.999Z'),
    });
    await repo.save(key);
    expect(key.id).toMatch(UUID);

    const loaded = await repo.findOneByOrFail({ id: key.id });
    expect(loaded).toEqual({ ...key });
    expect(loaded.createdAt).toBeInstanceOf(Date);
    expect(loaded.createdAt.toISOString()).toBe('2026-01-02T03:04:05.678Z');
    expect(loaded.lastUsedAt?.getTime()).toBe(at('2026-01-02T03:04:06.001Z').getTime());
    expect(loaded.revokedAt?.toISOString()).toBe('2026-12-31T23:59:59.999Z');
    expect(typeof loaded.credits).toBe('number');

    const minimal = await newKey();
    const reloaded = await repo.findOneByOrFail({ id: minimal.id });
    expect(reloaded).toMatchObject({
      credits: 0,
      requestsPerMinute: null,
      tokensPerMinute: null,
      maxConcurrentStreams: null,
      lastUsedAt: null,
      revokedAt: null,
    });
    expect(Math.abs(reloaded.createdAt.getTime() - Date.now())).toBeLessThan(5_000);

    await repo.update({ id: minimal.id }, { revokedAt: at('2026-05-05T05:05:05.555Z'), requestsPerMinute: 5 });
    expect(await repo.findOneByOrFail({ id: minimal.id })).toMatchObject({
      revokedAt: at('2026-05-05T05:05:05.555Z'),
      requestsPerMinute: 5,
    });
    await repo.delete({ id: minimal.id });
    expect(await repo.findOneBy({ id: minimal.id })).toBeNull();
  });

  it('ModelEntry: round-trips every column, booleans stay booleans, doubles stay doubles', async () => {
    const repo = ds.getRepository(ModelEntry);
    const entry = await repo.save(
      repo.create({
        name: 'llama3.2:1b',
        alias: 'small',
        description: 'Small and fast',
        enabled: false,
        isDefault: true,
        promptPricePer1k: 0.125,
        completionPricePer1k: 1.5e-3,
        inactivityThresholdSeconds: 300,
        createdAt: at('2026-02-03T04:05:06.789Z'),
      }),
    );
    const loaded = await repo.findOneByOrFail({ id: entry.id });
    expect(loaded).toEqual({ ...entry });
    expect(loaded.enabled).toBe(false);
    expect(loaded.isDefault).toBe(true);
    expect(loaded.promptPricePer1k).toBe(0.125);
    expect(loaded.completionPricePer1k).toBe(0.0015);
    expect(loaded.updatedAt.toISOString()).toBe('2026-02-03T04:05:06.789Z');

    const bare = await repo.save(repo.create({ name: 'qwen2.5:0.5b' }));
    expect(await repo.findOneByOrFail({ id: bare.id })).toMatchObject({
      alias: null,
      description: null,
      enabled: true,
      isDefault: false,
      promptPricePer1k: null,
      completionPricePer1k: null,
      inactivityThresholdSeconds: null,
    });

    loaded.description = null;
    loaded.enabled = true;
    await repo.save(loaded);
    const updated = await repo.findOneByOrFail({ id: entry.id });
    expect(updated.description).toBeNull();
    expect(updated.enabled).toBe(true);
    expect(updated.updatedAt.getTime()).toBeGreaterThan(entry.createdAt.getTime());
    expect(updated.createdAt.toISOString()).toBe('2026-02-03T04:05:06.789Z');
  });

  it('Session: round-trips every column, simple-json options and the apiKey relation', async () => {
    const key = await newKey();
    const repo = ds.getRepository(Session);
    const options = { temperature: 0.7, stop: ['\n\n', 'END'], nested: { seed: 42, flag: true }, none: null };
    const session = await repo.save(
      repo.create({
        apiKeyId: key.id,
        model: 'llama3.2:1b',
        systemPrompt: 'Be brief. «Unicode» ✓',
        options,
        title: 'First chat',
        createdAt: at('2026-03-04T05:06:07.008Z'),
        updatedAt: at('2026-03-04T05:06:07.009Z'),
      }),
    );
    const loaded = await repo.findOneOrFail({ where: { id: session.id }, relations: { apiKey: true } });
    expect(loaded.options).toEqual(options);
    expect(loaded.systemPrompt).toBe('Be brief. «Unicode» ✓');
    expect(loaded.title).toBe('First chat');
    expect(loaded.createdAt.toISOString()).toBe('2026-03-04T05:06:07.008Z');
    expect(loaded.updatedAt.toISOString()).toBe('2026-03-04T05:06:07.009Z');
    expect(loaded.apiKey?.id).toBe(key.id);
    expect(loaded.apiKeyId).toBe(key.id);

    const bare = await newSession(key.id);
    expect(await repo.findOneByOrFail({ id: bare.id })).toMatchObject({ systemPrompt: null, options: null, title: null });

    // A query-builder update still moves updatedAt (TypeORM adds CURRENT_TIMESTAMP), and it hydrates as a Date.
    await ds.createQueryBuilder().update(Session).set({ title: 'Renamed' }).where('id = :id', { id: session.id }).execute();
    const renamed = await repo.findOneByOrFail({ id: session.id });
    expect(renamed.title).toBe('Renamed');
    expect(renamed.updatedAt).toBeInstanceOf(Date);
    expect(Math.abs(renamed.updatedAt.getTime() - Date.now())).toBeLessThan(5_000);
  });

  it('Message: round-trips every column, images as JSON, content defaults to empty', async () => {
    const session = await newSession((await newKey()).id);
    const repo = ds.getRepository(Message);
    const message = await repo.save(
      repo.create({
        sessionId: session.id,
        seq: 1,
        role: 'assistant',
        content: 'Hello there',
        images: ['aGVsbG8=', 'd29ybGQ='],
        promptTokens: 12,
        completionTokens: 34,
        status: 'INTERRUPTED',
        errorCode: 'UPSTREAM_ERROR',
        generationId: '00000000-0000-4000-8000-000000000000',
        createdAt: at('2026-04-05T06:07:08.090Z'),
        updatedAt: at('2026-04-05T06:07:08.091Z'),
      }),
    );
    const loaded = await repo.findOneOrFail({ where: { id: message.id }, relations: { session: true } });
    expect({ ...loaded, session: undefined }).toEqual({ ...message, session: undefined });
    expect(loaded.images).toEqual(['aGVsbG8=', 'd29ybGQ=']);
    expect(loaded.session?.id).toBe(session.id);

    const bare = await repo.save(repo.create({ sessionId: session.id, seq: 2, role: 'user', status: 'STREAMING' }));
    expect(await repo.findOneByOrFail({ id: bare.id })).toMatchObject({
      content: '',
      images: null,
      promptTokens: null,
      completionTokens: null,
      errorCode: null,
      generationId: null,
    });
  });

  it('Generation: round-trips every column with defaults for counters and response', async () => {
    const key = await newKey();
    const session = await newSession(key.id);
    const repo = ds.getRepository(Generation);
    const conversation = [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content: 'Look', images: ['aGVsbG8='] },
    ];
    const generation = await repo.save(
      repo.create({
        apiKeyId: key.id,
        sessionId: session.id,
        model: 'llava:7b',
        kind: 'chat',
        streamed: true,
        prompt: 'Look',
        messages: conversation,
        response: 'A cat.',
        promptTokens: 20,
        completionTokens: 3,
        creditsReserved: 100,
        creditsCharged: 23,
        status: 'ERROR',
        errorCode: 'UPSTREAM_TIMEOUT',
        doneReason: 'stop',
        requestId: 'req-123',
        firstTokenMs: 45,
        totalDurationMs: 1234,
        createdAt: at('2026-05-06T07:08:09.010Z'),
        finishedAt: at('2026-05-06T07:08:10.244Z'),
      }),
    );
    const loaded = await repo.findOneByOrFail({ id: generation.id });
    expect(loaded).toEqual({ ...generation });
    expect(loaded.streamed).toBe(true);
    expect(loaded.messages).toEqual(conversation);
    expect(loaded.finishedAt?.toISOString()).toBe('2026-05-06T07:08:10.244Z');

    const bare = await newGeneration(key.id, null);
    expect(await repo.findOneByOrFail({ id: bare.id })).toMatchObject({
      sessionId: null,
      streamed: false,
      messages: null,
      response: '',
      promptTokens: 0,
      completionTokens: 0,
      creditsReserved: 0,
      creditsCharged: 0,
      errorCode: null,
      doneReason: null,
      requestId: null,
      firstTokenMs: null,
      totalDurationMs: null,
      finishedAt: null,
    });
  });

  it('Setting: stores any JSON value under a key', async () => {
    const repo = ds.getRepository(Setting);
    const values = {
      'test.string': 'You are helpful.',
      'test.number': 300,
      'test.boolean': false,
      'test.null': null,
      'test.array': [1, 'two', { three: 3 }],
      'test.object': { model: 'llama3.2:1b', thresholds: { a: 1 } },
    };
    for (const [key, value] of Object.entries(values)) await repo.save(repo.create({ key, value }));
    for (const [key, value] of Object.entries(values)) {
      const loaded = await repo.findOneByOrFail({ key });
      expect(loaded.value, key).toEqual(value);
      expect(loaded.updatedAt).toBeInstanceOf(Date);
    }
    const setting = await repo.findOneByOrFail({ key: 'test.number' });
    setting.value = 600;
    await repo.save(setting);
    expect((await repo.findOneByOrFail({ key: 'test.number' })).value).toBe(600);
    await repo.delete({ key: 'test.number' });
    expect(await repo.findOneBy({ key: 'test.number' })).toBeNull();
  });

  it('keeps instants exact in any Node time zone, including a repeated DST hour', async () => {
    const previous = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      expect(at('2026-11-01T06:30:00Z').getTimezoneOffset()).toBe(300);
      // 01:30 on 2026-11-01 happens twice in New York: 05:30Z (EDT) and 06:30Z (EST).
      const first = await newKey({ createdAt: at('2026-11-01T05:30:00.123Z') });
      const second = await newKey({ createdAt: at('2026-11-01T06:30:00.456Z') });
      const repo = ds.getRepository(ApiKey);
      expect((await repo.findOneByOrFail({ id: first.id })).createdAt.toISOString()).toBe('2026-11-01T05:30:00.123Z');
      expect((await repo.findOneByOrFail({ id: second.id })).createdAt.toISOString()).toBe('2026-11-01T06:30:00.456Z');
      // Date parameters in query-builder conditions compare as instants too.
      const between = await repo
        .createQueryBuilder('k')
        .where('k.createdAt > :from AND k.createdAt < :to', {
          from: at('2026-11-01T05:30:00.124Z'),
          to: at('2026-11-01T06:30:00.457Z'),
        })
        .getMany();
      expect(between.map((k) => k.id)).toEqual([second.id]);
    } finally {
      if (previous === undefined) delete process.env.TZ;
      else process.env.TZ = previous;
    }
  });

  it('rejects duplicate secretHash, model name, model alias and (sessionId, seq)', async () => {
    const key = await newKey();
    await rejectsWith(newKey({ secretHash: key.secretHash }), uniqueViolation);

    const models = ds.getRepository(ModelEntry);
    await models.save(models.create({ name: 'dup:latest', alias: 'dup' }));
    await rejectsWith(models.save(models.create({ name: 'dup:latest' })), uniqueViolation);
    await rejectsWith(models.save(models.create({ name: 'other:latest', alias: 'dup' })), uniqueViolation);
    // Many entries may have no alias.
    await models.save(models.create({ name: 'a:latest', alias: null }));
    await models.save(models.create({ name: 'b:latest', alias: null }));

    const session = await newSession(key.id);
    await newMessage(session.id, 1);
    await rejectsWith(newMessage(session.id, 1), uniqueViolation);
    // The same seq in another session is fine.
    await newMessage((await newSession(key.id)).id, 1);
  });

  it('deleting a session deletes its messages and detaches its generations', async () => {
    const key = await newKey();
    const session = await newSession(key.id);
    const other = await newSession(key.id);
    await newMessage(session.id, 1);
    await newMessage(session.id, 2);
    const kept = await newMessage(other.id, 1);
    const generation = await newGeneration(key.id, session.id);

    await ds.getRepository(Session).delete({ id: session.id });

    expect(await ds.getRepository(Message).countBy({ sessionId: session.id })).toBe(0);
    expect(await ds.getRepository(Message).findOneBy({ id: kept.id })).not.toBeNull();
    const detached = await ds.getRepository(Generation).findOneByOrFail({ id: generation.id });
    expect(detached.sessionId).toBeNull();
  });

  it('refuses to delete an API key that has generations, and cascades to sessions otherwise', async () => {
    const used = await newKey();
    await newGeneration(used.id, null);
    await rejectsWith(ds.getRepository(ApiKey).delete({ id: used.id }), foreignKeyViolation);
    expect(await ds.getRepository(ApiKey).findOneBy({ id: used.id })).not.toBeNull();

    const unused = await newKey();
    const session = await newSession(unused.id);
    await newMessage(session.id, 1);
    await ds.getRepository(ApiKey).delete({ id: unused.id });
    expect(await ds.getRepository(Session).findOneBy({ id: session.id })).toBeNull();
    expect(await ds.getRepository(Message).countBy({ sessionId: session.id })).toBe(0);
  });

  it('rejects a session for an unknown API key', async () => {
    await rejectsWith(newSession('00000000-0000-4000-8000-000000000000'), foreignKeyViolation);
  });
});
