import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { KeyService } from '../../src/services/access/keys.js';
import { finishUsageRow, insertUsageRow } from '../../src/services/db/generations.js';
import { usageLogActivity } from '../../src/services/models/shared-activity.js';
import { type TestDatabase, createTestDatabase, describeEachDatabase } from '../helpers/database.js';

// The idle reaper's view of requests other instances served on its host: plain SQL on the usage log.
describeEachDatabase('usageLogActivity', (kind) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await db?.cleanup();
  });

  it("reports the host's streaming models and each model's latest start or end since a time", async () => {
    const { key } = await new KeyService(db.database, 100).create({ name: 'activity', role: 'USER' });
    const host = 'http://ollama-a:11434';
    const base = Date.UTC(2026, 5, 1, 12, 0, 0, 0);
    const at = (ms: number) => new Date(base + ms);
    const row = async (model: string, rowHost: string, createdAt: Date, finishedAt: Date | null) => {
      const id = randomUUID();
      await db.database.sqlClient.transaction(async (tx) => {
        await insertUsageRow(tx, { id, apiKeyId: key.id, sessionId: null, model, kind: 'generate', streamed: true, prompt: 'p', messages: null, requestId: null, host: rowHost, instanceId: 'other', status: 'STREAMING', creditsReserved: 1, createdAt });
        if (finishedAt) {
          await finishUsageRow(tx, id, { status: 'COMPLETE', response: 'r', thinking: null, toolCalls: null, promptTokens: 1, completionTokens: 1, creditsCharged: 1, errorCode: null, doneReason: 'stop', firstTokenMs: 1, host: rowHost, totalDurationMs: 1, finishedAt });
        }
      });
    };
    await row('llama3.2', host, at(0), at(1_500)); // finished: its end counts
    await row('llama3.2', host, at(1_000), at(1_200)); // an older end
    await row('Qwen3:8B', host, at(-3_600_000), null); // streaming since long before `since`: busy all the same
    await row('mistral', host, at(-7_200_000), at(-7_100_000)); // before `since`: not reported
    await row('phi4', 'http://ollama-b:11434', at(500), at(600)); // another host

    const activity = await usageLogActivity(db.database, host)(at(-60_000));
    expect([...activity.busy]).toEqual(['qwen3:8b']);
    expect(Object.fromEntries(activity.lastActive)).toEqual({ 'llama3.2:latest': base + 1_500, 'qwen3:8b': base - 3_600_000 });
  });
});
