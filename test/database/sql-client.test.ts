import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { ModelEntry } from '../../src/entities/model-entry.js';
import { findActiveKey } from '../../src/services/db/api-keys.js';
import { finishUsageRow, insertUsageRow } from '../../src/services/db/generations.js';
import { Setting } from '../../src/entities/setting.js';
import { findDefaultModelEntry, findModelEntry, listModelEntries, readSetting } from '../../src/services/db/lookups.js';
import { KeyService } from '../../src/services/access/keys.js';
import { SettingsService } from '../../src/services/platform/settings.js';
import { type TestDatabase, createTestDatabase, describeEachDatabase } from '../helpers/database.js';

describeEachDatabase('SqlClient: plain SQL and TypeORM read each other\'s rows the same', (kind) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await db?.cleanup();
  });

  it('a usage row written as plain SQL (date with milliseconds, boolean, JSON, nulls) loads through TypeORM as written', async () => {
    const { key } = await new KeyService(db.database, 10).create({ name: 'values', role: 'USER' });
    const id = randomUUID();
    const createdAt = new Date(Date.UTC(2026, 2, 29, 1, 30, 15, 123)); // in a DST change of many zones
    const messages = [{ role: 'user' as const, content: 'héllo 🦙', images: ['[image]'] }];
    await db.database.sqlClient.transaction((tx) =>
      insertUsageRow(tx, { id, apiKeyId: key.id, sessionId: null, model: 'llama3.2', kind: 'chat', streamed: true, prompt: 'héllo 🦙', messages, requestId: 'r1', host: null, instanceId: 'i1', status: 'STREAMING', creditsReserved: 7, createdAt }),
    );
    const finishedAt = new Date(createdAt.getTime() + 1_001);
    const toolCalls = [{ id: 'c1', name: 'lookup', arguments: { q: 'x', n: [1, 2] } }];
    const finished = await db.database.sqlClient.transaction((tx) =>
      finishUsageRow(tx, id, { status: 'COMPLETE', response: 'done', thinking: null, toolCalls, promptTokens: 3, completionTokens: 4, creditsCharged: 5, errorCode: null, doneReason: 'stop', firstTokenMs: 12, host: 'http://h', totalDurationMs: 1001, finishedAt }),
    );
    expect(finished).toBe(true);
    const row = await db.orm.getRepository(Generation).findOneByOrFail({ id });
    expect(row).toMatchObject({ streamed: true, messages, toolCalls, thinking: null, status: 'COMPLETE', response: 'done', creditsReserved: 7, creditsCharged: 5, sessionId: null, instanceId: 'i1' });
    expect(row.createdAt.toISOString()).toBe(createdAt.toISOString());
    expect(row.finishedAt?.toISOString()).toBe(finishedAt.toISOString());
    // A finished row is not finished again.
    expect(await db.database.sqlClient.transaction((tx) => finishUsageRow(tx, id, { status: 'ERROR', response: '', thinking: null, toolCalls: null, promptTokens: 0, completionTokens: 0, creditsCharged: 0, errorCode: 'X', doneReason: null, firstTokenMs: null, host: null, totalDurationMs: 0, finishedAt }))).toBe(false);
  });

  it('the key, the catalogue entry and a setting written through TypeORM read the same as plain SQL', async () => {
    const { key, secret } = await new KeyService(db.database, 10).create({ name: 'lookup', role: 'USER', limits: { requestsPerMinute: 9 } });
    await db.orm.getRepository(ApiKey).update({ id: key.id }, { lastUsedAt: new Date(Date.UTC(2026, 9, 25, 0, 59, 59, 999)) });
    const viaOrm = await db.orm.getRepository(ApiKey).findOneByOrFail({ id: key.id });
    const viaSql = await findActiveKey(db.database.sqlClient, { id: key.id });
    expect(viaSql).toEqual(viaOrm);
    // A plain object, not the entity class: that class's decorators would load TypeORM on the hot path.
    expect(Object.getPrototypeOf(viaSql)).toBe(Object.prototype);
    expect(await findActiveKey(db.database.sqlClient, { secretHash: viaOrm.secretHash })).toEqual(viaOrm);
    expect(secret.length).toBeGreaterThan(0);
    await db.orm.getRepository(ApiKey).update({ id: key.id }, { revokedAt: new Date() });
    expect(await findActiveKey(db.database.sqlClient, { id: key.id })).toBeNull();

    const repo = db.orm.getRepository(ModelEntry);
    const entry = await repo.save(repo.create({ id: randomUUID(), name: 'llava:7b', alias: 'eyes', enabled: false, isDefault: true, promptPricePer1k: 0.25, completionPricePer1k: null, inactivityThresholdSeconds: 30 }));
    const stored = await repo.findOneByOrFail({ id: entry.id });
    expect(await findModelEntry(db.database.sqlClient, { alias: 'eyes' })).toEqual(stored);
    expect(await findModelEntry(db.database.sqlClient, { name: 'llava:7b' })).toEqual(stored);
    expect(await findModelEntry(db.database.sqlClient, { name: 'nope:latest' })).toBeNull();
    expect(await findDefaultModelEntry(db.database.sqlClient)).toEqual(stored);
    expect(await listModelEntries(db.database.sqlClient)).toEqual(await repo.find({ order: { name: 'ASC' } }));

    const settings = new SettingsService(db.database, {});
    await settings.write('a-json', { n: 1, s: 'é' });
    await settings.write('a-null', null);
    expect(await readSetting(db.database.sqlClient, 'a-json')).toEqual({ found: true, value: { n: 1, s: 'é' } });
    expect(await readSetting(db.database.sqlClient, 'a-null')).toEqual({ found: true, value: null });
    expect(await readSetting(db.database.sqlClient, 'absent')).toEqual({ found: false, value: null });
    // Written in plain SQL, read the same through TypeORM; a second write replaces the value.
    const viaOrmSetting = (key: string) => db.orm.getRepository(Setting).findOneByOrFail({ key });
    expect((await viaOrmSetting('a-json')).value).toEqual({ n: 1, s: 'é' });
    expect((await viaOrmSetting('a-null')).value).toBeNull();
    await settings.write('a-json', [2]);
    expect((await viaOrmSetting('a-json')).value).toEqual([2]);
    expect(await readSetting(db.database.sqlClient, 'a-json')).toEqual({ found: true, value: [2] });
  });

  it.skipIf(kind !== 'sqlite')('its own SQLite connection: WAL, synchronous NORMAL (it flushes the WAL itself before a commit is acknowledged: wal-flush.test.ts), foreign keys, busy timeout', async () => {
    const sql = db.database.sqlClient;
    expect((await sql.get('PRAGMA journal_mode'))?.journal_mode).toBe('wal');
    expect((await sql.get('PRAGMA synchronous'))?.synchronous).toBe(1);
    expect((await sql.get('PRAGMA foreign_keys'))?.foreign_keys).toBe(1);
    expect((await sql.get('PRAGMA busy_timeout'))?.timeout).toBe(5000);
  });
});
