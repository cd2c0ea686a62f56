import type { SqlTx } from '../../src/services/db/sql-client.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../../src/emulator/server.js';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { CreditLedger, costOf } from '../../src/services/access/credits.js';
import { GatewayError } from '../../src/services/platform/errors.js';
import { ActiveStreams } from '../../src/services/generation/active-streams.js';
import { GenerationService } from '../../src/services/generation/generation-service.js';
import type { GenerationEvent } from '../../src/services/generation/types.js';
import type { ModelDirectory } from '../../src/services/generation/hooks.js';
import { KeyService, type Principal, toPrincipal } from '../../src/services/access/keys.js';
import { createLogger } from '../../src/services/platform/logger.js';
import { OllamaPool } from '../../src/services/ollama/pool.js';
import { type TestDatabase, createTestDatabase, describeEachDatabase } from '../helpers/database.js';

// 0.1 credit per prompt token, 1 credit per completion token, plus REQUEST_COST 1.
const pricing = { promptPricePer1k: 100, completionPricePer1k: 1000 };
const priced: ModelDirectory = { resolve: async (name) => ({ name, pricing }), markBusy: () => () => {} };

describeEachDatabase('credit reservation and settlement with per-model prices', (kind) => {
  let db: TestDatabase;
  let emulator: Emulator;
  let service: GenerationService;
  let keys: KeyService;

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    emulator = await startEmulator({ tokenDelayMs: 0 });
    keys = new KeyService(db.database, 0);
    service = new GenerationService({
      db: db.database,
      pool: new OllamaPool([emulator.url], { timeouts: { connectMs: 5000, stallMs: 5000 }, healthCheckIntervalMs: 0, log: createLogger('silent') }),
      credits: new CreditLedger(),
      active: new ActiveStreams(),
      log: createLogger('silent'),
      requestCost: 1,
      defaultMaxTokens: 50,
      models: priced,
    });
  });
  afterAll(async () => {
    await emulator?.close();
    await db?.cleanup();
  });

  const newPrincipal = async (credits: number): Promise<Principal> => toPrincipal((await keys.create({ name: `priced ${credits}`, role: 'USER', credits })).key);
  const balance = async (p: Principal) => (await db.orm.getRepository(ApiKey).findOneByOrFail({ id: p.id })).credits;
  const row = (id: string) => db.orm.getRepository(Generation).findOneByOrFail({ id });
  const meta = { requestId: 'test', streamed: true };

  it('holds the worst case while streaming, then charges the real cost and refunds the rest', async () => {
    const p = await newPrincipal(1000);
    const stream = service.generate(p, { model: 'llama3.2', prompt: 'Price this, please.', options: { maxTokens: 5 } }, meta);
    let first: GenerationEvent | undefined;
    let held = -1;
    let done: Extract<GenerationEvent, { type: 'DONE' }> | undefined;
    for await (const e of stream) {
      if (e.type === 'TOKEN' && !first) {
        first = e;
        held = 1000 - (await balance(p));
      }
      if (e.type === 'DONE') done = e;
    }
    const r = await row(done!.generationId);
    expect(r.creditsReserved).toBe(held); // the reservation was in force during the stream
    // The prompt bound: half a token per character, 16, and 8 per message for the chat template.
    expect(r.creditsReserved).toBe(costOf({ promptTokens: Math.ceil('Price this, please.'.length / 2) + 16 + 8, completionTokens: 5 }, pricing, 1));
    const real = costOf({ promptTokens: r.promptTokens, completionTokens: r.completionTokens }, pricing, 1);
    expect(r.completionTokens).toBe(5);
    expect(done!.creditsCharged).toBe(real);
    expect(r.creditsCharged).toBe(real);
    expect(real).toBeLessThan(r.creditsReserved); // so something was refunded
    expect(await balance(p)).toBe(1000 - real);
  });

  it('charges a stream cut by the client for the tokens it produced and the prompt Ollama evaluated (estimated)', async () => {
    emulator.setTokenDelay(20);
    try {
      const p = await newPrincipal(1000);
      const stream = service.generate(p, { model: 'llama3.2', prompt: 'Stop me.' }, meta);
      let id = '';
      let tokens = 0;
      for await (const e of stream) {
        if (e.type === 'TOKEN') {
          id = e.generationId;
          if (++tokens === 2) break; // return(): the client left
        }
      }
      const r = await row(id);
      expect(r.status).toBe('CANCELLED');
      expect(r.creditsReserved).toBeGreaterThan(50); // worst case: defaultMaxTokens completion tokens
      // Ollama reports no counts for a cut stream: the prompt is estimated at 4 characters a token plus the template's 8.
      expect(r.promptTokens).toBe(Math.ceil('Stop me.'.length / 4) + 8);
      expect(r.creditsCharged).toBe(costOf({ promptTokens: r.promptTokens, completionTokens: r.completionTokens }, pricing, 1));
      expect(await balance(p)).toBe(1000 - r.creditsCharged);
    } finally {
      emulator.setTokenDelay(0);
    }
  });

  it('under concurrency never overspends: the balance is the start minus the charges, refused requests never reach the model', async () => {
    const p = await newPrincipal(100);
    const upstreamBefore = emulator.requests.filter((r) => r.path === '/api/generate').length;
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        try {
          let charged = 0;
          for await (const e of service.generate(p, { model: 'llama3.2', prompt: `q${i}`, options: { maxTokens: 5 } }, meta)) if (e.type === 'DONE') charged = e.creditsCharged;
          return { ok: true, charged };
        } catch (e) {
          return { ok: false, code: (e as GatewayError).code };
        }
      }),
    );
    const ok = outcomes.filter((o) => o.ok);
    expect(outcomes.filter((o) => !o.ok).every((o) => o.code === 'INSUFFICIENT_CREDITS')).toBe(true);
    const rows = await db.orm.getRepository(Generation).find({ where: { apiKeyId: p.id } });
    expect(rows).toHaveLength(40);
    const reservation = Math.max(...rows.map((r) => r.creditsReserved));
    // At worst every success held a full reservation at once.
    expect(ok.length).toBeGreaterThanOrEqual(Math.floor(100 / reservation));
    expect(ok.length).toBeLessThan(40);
    const charged = rows.reduce((n, r) => n + r.creditsCharged, 0);
    expect(charged).toBe(ok.reduce((n, o) => n + (o.charged ?? 0), 0));
    const left = await balance(p);
    expect(left).toBe(100 - charged);
    expect(left).toBeGreaterThanOrEqual(0);
    expect(emulator.requests.filter((r) => r.path === '/api/generate').length - upstreamBefore).toBe(ok.length);
  });
  // SQLite defers a foreign key check to COMMIT on request; PostgreSQL's constraints here are not deferrable.
  // The request to Ollama is started inside the reservation's transaction, but its bytes leave on a
  // later tick than the COMMIT: a failed commit aborts it before it is sent.
  it.skipIf(kind !== 'sqlite')('a reservation whose commit fails aborts the request to Ollama before it is sent: no token, no charge (SQLite)', async () => {
    emulator.setTokenDelay(100);
    try {
      const p = await newPrincipal(1000);
      const prompt = `commit fails ${Date.now()}`;
      const received: GenerationEvent[] = [];
      const run = (async () => {
        const plan = {
          kind: 'generate' as const,
          model: 'llama3.2',
          prompt,
          // Breaks a foreign key in a way SQLite reports only at COMMIT, after the conditional UPDATE succeeded.
          onStart: async (tx: SqlTx, generationId: string) => {
            await tx.run('PRAGMA defer_foreign_keys = ON');
            await tx.run("UPDATE generations SET api_key_id = 'no-such-key' WHERE id = ?", [generationId]);
          },
        };
        for await (const e of service.stream(p, async () => plan, meta)) received.push(e);
      })();
      await expect(run).rejects.toThrow(/FOREIGN KEY/i);
      // A request sent after it on the same connection pool has been answered: one still on its way would have arrived.
      const after = `after the failed commit ${Date.now()}`;
      emulator.setTokenDelay(0);
      for await (const e of service.stream(p, async () => ({ kind: 'generate' as const, model: 'llama3.2', prompt: after }), meta)) void e;
      expect(emulator.requests.some((r) => r.path === '/api/generate' && (r.body as { prompt?: string }).prompt === after)).toBe(true);
      expect(emulator.requests.filter((r) => r.path === '/api/generate' && (r.body as { prompt?: string }).prompt === prompt)).toEqual([]);
      expect(received.filter((e) => e.type === 'TOKEN')).toEqual([]);
      // The reservation was rolled back with its transaction; only the second request was charged and logged.
      const logged = await db.orm.getRepository(Generation).findBy({ apiKeyId: p.id });
      expect(logged.map((g) => g.prompt)).toEqual([after]);
      expect(await balance(p)).toBe(1000 - logged[0].creditsCharged);
    } finally {
      emulator.setTokenDelay(0);
    }
  });
});
