// A generation run without Ollama: its upstream is a scripted source behind the UpstreamCall seam,
// so who settles, when, and what is charged can be checked step by step (real SQLite file).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { Generation } from '../../src/entities/generation.js';
import { CreditLedger } from '../../src/services/access/credits.js';
import { ErrorCode, GatewayError } from '../../src/services/platform/errors.js';
import { ActiveStreams } from '../../src/services/generation/active-streams.js';
import { GenerationService } from '../../src/services/generation/generation-service.js';
import type { ModelDirectory } from '../../src/services/generation/hooks.js';
import type { GenerationEvent } from '../../src/services/generation/types.js';
import type { UpstreamCall, UpstreamChunk, UpstreamRequest } from '../../src/services/generation/upstream-call.js';
import { KeyService, type Principal, toPrincipal } from '../../src/services/access/keys.js';
import { createLogger } from '../../src/services/platform/logger.js';
import { OllamaPool } from '../../src/services/ollama/pool.js';
import { type TestDatabase, createTestDatabase } from '../helpers/database.js';

// One credit per prompt token and per completion token, plus REQUEST_COST 1.
const directory: ModelDirectory = { resolve: async (name) => ({ name, pricing: { promptPricePer1k: 1000, completionPricePer1k: 1000 } }), markBusy: () => () => {} };

/** A scripted upstream: each call gets the chunks `script` yields; records its requests and whether it was closed. */
function scripted(script: (r: UpstreamRequest) => AsyncGenerator<UpstreamChunk>) {
  const calls: Array<{ request: UpstreamRequest; closed: boolean; aborted: () => boolean }> = [];
  const call: UpstreamCall = (request) => {
    const entry = { request, closed: false, aborted: () => request.signal.aborted };
    calls.push(entry);
    const source = script(request);
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => source.next(),
        return: async () => {
          entry.closed = true;
          return source.return(undefined);
        },
      }),
    };
  };
  return { call, calls };
}

const chunk = (response: string): UpstreamChunk => ({ done: false, response });
const final = (response: string, evalCount: number): UpstreamChunk => ({ done: true, response, done_reason: 'stop', prompt_eval_count: 7, eval_count: evalCount });

let db: TestDatabase;
let keys: KeyService;
const active = new ActiveStreams();
beforeAll(async () => {
  db = await createTestDatabase('sqlite');
  keys = new KeyService(db.database, 0);
});
afterAll(() => db?.cleanup());

function service(upstream: UpstreamCall) {
  return new GenerationService({
    db: db.database,
    // Never asked: the run reaches "Ollama" through `upstream`; the host only names the row.
    pool: new OllamaPool(['http://127.0.0.1:9'], { timeouts: { connectMs: 500, stallMs: 500 }, healthCheckIntervalMs: 0, log: createLogger('silent') }),
    credits: new CreditLedger(),
    active,
    log: createLogger('silent'),
    requestCost: 1,
    defaultMaxTokens: 20,
    models: directory,
    upstream,
  });
}
const principal = async (credits = 1000): Promise<Principal> => toPrincipal((await keys.create({ name: 'run', role: 'USER', credits })).key);
const balance = async (p: Principal) => (await db.orm.getRepository(ApiKey).findOneByOrFail({ id: p.id })).credits;
const rowOf = (id: string) => db.orm.getRepository(Generation).findOneByOrFail({ id });
const meta = { requestId: 'run-test', streamed: true };

describe('GenerationRun, step by step', () => {
  it('completes: the final chunk\'s text is relayed, Ollama\'s counts are charged once, the rest refunded, num_predict bounded', async () => {
    const { call, calls } = scripted(async function* () {
      yield chunk('Hello');
      yield chunk(',');
      yield final(' world', 3);
    });
    const p = await principal();
    const events: GenerationEvent[] = [];
    for await (const e of service(call).generate(p, { model: 'm', prompt: 'Hi there' }, meta)) events.push(e);
    const text = events.map((e) => (e.type === 'TOKEN' ? e.delta : '')).join('');
    expect(text).toBe('Hello, world');
    const done = events.at(-1) as Extract<GenerationEvent, { type: 'DONE' }>;
    expect(done).toMatchObject({ type: 'DONE', doneReason: 'stop', usage: { promptTokens: 7, completionTokens: 3 }, creditsCharged: 1 + 7 + 3 });
    expect(calls[0].request.options.num_predict).toBe(20);
    expect(calls[0].request.keepAlive).toBe('5m');
    const row = await rowOf(done.generationId);
    expect(row).toMatchObject({ status: 'COMPLETE', response: 'Hello, world', creditsCharged: 11 });
    expect(await balance(p)).toBe(1000 - 11);
  });

  it('a consumer that leaves mid-stream: the upstream is aborted and closed, the run settles once as CANCELLED', async () => {
    let release!: () => void;
    const { call, calls } = scripted(async function* () {
      yield chunk('one');
      yield chunk(' two');
      await new Promise<void>((r) => (release = r)); // parked on "the network"
      yield final('', 2);
    });
    const p = await principal();
    const stream = service(call).generate(p, { model: 'm', prompt: 'Leave early' }, meta);
    let id = '';
    let tokens = 0;
    for await (const e of stream) {
      if (e.type === 'TOKEN') {
        id = e.generationId;
        tokens += e.tokenCount;
        if (tokens === 2) break; // return(): the client left
      }
    }
    release?.();
    const row = await rowOf(id);
    expect(row.status).toBe('CANCELLED');
    expect(row.errorCode).toBe(ErrorCode.CANCELLED);
    // The prompt Ollama evaluated (estimated: 11 characters / 4, plus 8 for the template) and two tokens.
    expect(row.promptTokens).toBe(Math.ceil('Leave early'.length / 4) + 8);
    expect(row.creditsCharged).toBe(1 + row.promptTokens + 2);
    expect(await balance(p)).toBe(1000 - row.creditsCharged);
    expect(calls[0].aborted()).toBe(true);
    expect(calls[0].closed).toBe(true);
    expect(active.has(id)).toBe(false);
  });

  it('cancelled by the gateway (e.g. revocation): the client is told why, and nothing is charged before Ollama answered', async () => {
    const { call } = scripted(async function* (r) {
      await new Promise<void>((resolve) => r.signal.addEventListener('abort', () => resolve(), { once: true }));
      throw new Error('aborted');
    });
    const p = await principal();
    const stream = service(call).generate(p, { model: 'm', prompt: 'Never answered' }, meta);
    const first = await stream.next(); // PHASE: the run is registered and waits on "Ollama"
    const id = (first.value as GenerationEvent).generationId;
    active.cancel(id, new GatewayError(ErrorCode.UNAUTHENTICATED, 'The API key was revoked.'));
    await expect(stream.next()).rejects.toMatchObject({ code: ErrorCode.UNAUTHENTICATED });
    const row = await rowOf(id);
    expect(row).toMatchObject({ status: 'CANCELLED', errorCode: ErrorCode.UNAUTHENTICATED, creditsCharged: 0, promptTokens: 0 });
    expect(await balance(p)).toBe(1000);
  });

  it('an upstream failure after some tokens: ERROR, settled once, the tokens and the prompt charged', async () => {
    const { call } = scripted(async function* () {
      yield chunk('partial');
      throw new GatewayError(ErrorCode.UPSTREAM_ERROR, 'Ollama reported an error.');
    });
    const p = await principal();
    const events: GenerationEvent[] = [];
    await expect(
      (async () => {
        for await (const e of service(call).generate(p, { model: 'm', prompt: 'Fail' }, meta)) events.push(e);
      })(),
    ).rejects.toMatchObject({ code: ErrorCode.UPSTREAM_ERROR });
    const id = events[0].generationId;
    const row = await rowOf(id);
    expect(row).toMatchObject({ status: 'ERROR', errorCode: ErrorCode.UPSTREAM_ERROR, response: 'partial', completionTokens: 1 });
    expect(row.creditsCharged).toBe(1 + row.promptTokens + 1);
    expect(await balance(p)).toBe(1000 - row.creditsCharged);
  });
});
