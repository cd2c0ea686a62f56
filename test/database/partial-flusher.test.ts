import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { PartialFlusher } from '../../src/services/generation/partial-flusher.js';
import { KeyService } from '../../src/services/access/keys.js';
import { createLogger } from '../../src/services/platform/logger.js';
import { type TestDatabase, createTestDatabase, describeEachDatabase } from '../helpers/database.js';

describeEachDatabase('PartialFlusher', (kind) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await db?.cleanup();
  });

  it('saves the partial text of many streams (several transactions), and never overwrites a finished row', async () => {
    const { key } = await new KeyService(db.database, 100).create({ name: 'flush', role: 'USER' });
    const repo = db.orm.getRepository(Generation);
    const ids = Array.from({ length: 60 }, () => randomUUID());
    for (const id of ids) {
      await repo.insert({ id, apiKeyId: key.id, sessionId: null, model: 'm', kind: 'generate', streamed: true, prompt: 'p', messages: null, requestId: 'r', createdAt: new Date(), status: 'STREAMING', creditsReserved: 10 });
    }
    await repo.update({ id: ids[59] }, { status: 'COMPLETE', response: 'final', completionTokens: 99 });
    const flusher = new PartialFlusher(db.database, createLogger('silent'), 1000);
    ids.forEach((id, i) => flusher.update(id, { text: `partial ${i}`, completionTokens: i, creditsSoFar: 1 }));
    await flusher.flush();
    const rows = new Map((await repo.find()).map((r) => [r.id, r]));
    ids.slice(0, 59).forEach((id, i) => expect(rows.get(id)).toMatchObject({ status: 'STREAMING', response: `partial ${i}`, completionTokens: i, creditsCharged: 1 }));
    expect(rows.get(ids[59])).toMatchObject({ status: 'COMPLETE', response: 'final', completionTokens: 99 });
  });
});
