import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/services/platform/logger.js';
import { type TestGateway, collect, post, sse, startGateway, wsClient } from '../helpers/gateway.js';

/** Every log line the gateway writes during this file, parsed. */
const lines: Array<Record<string, unknown> & { level: number; msg?: string }> = [];
let raw = '';
const capture = new Writable({
  write(chunk: Buffer, _enc, done) {
    raw += chunk.toString('utf8');
    for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line));
    done();
  },
});

const INFO = 30;
const CANARY = 'zebra-canary-prompt-7f3a';
const SUBSCRIPTION = `subscription($input: GenerateInput!) { generate(input: $input) { type } }`;

let gw: TestGateway;
const secrets: string[] = [];
beforeAll(async () => {
  gw = await startGateway({ log: createLogger('debug', capture), env: { LOG_LEVEL: 'debug' } });
  secrets.push(gw.adminSecret, gw.userSecret);
});
afterAll(async () => {
  await gw?.stop();
});

describe('logs of a run of ordinary and failing traffic', () => {
  beforeAll(async () => {
    const created = await post<{ createApiKey: { secret: string; key: { id: string } } }>(
      gw,
      `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret key { id } } }`,
      { input: { name: 'short-lived', limits: { requestsPerMinute: 3 } } },
      gw.adminSecret,
    );
    const temp = created.body.data!.createApiKey;
    secrets.push(temp.secret);
    const input = { input: { model: 'llama3.2', prompt: `Tell me about ${CANARY} please` } };

    // HTTP, websocket and SSE generations, with the canary in the prompt (and echoed in the reply).
    expect((await post(gw, `mutation($input: GenerateInput!) { generate(input: $input) { text } }`, input, temp.secret)).body.errors).toBeUndefined();
    const client = wsClient(gw, temp.secret);
    await collect(client, SUBSCRIPTION, input).done;
    await sse(gw, SUBSCRIPTION, input, temp.secret);
    // Over the request limit (3 per minute): both refused.
    await post(gw, `mutation($input: GenerateInput!) { generate(input: $input) { text } }`, input, temp.secret);
    await post(gw, `mutation($input: GenerateInput!) { generate(input: $input) { text } }`, input, temp.secret);
    // Failures: a bad key, a validation error, an upstream error.
    const badKey = 'llmgw_thisIsNotARealKeyButLooksLikeOne0000000000';
    secrets.push(badKey);
    await post(gw, '{ me { id } }', undefined, badKey);
    await post(gw, `{ nope(prompt: "${CANARY}") }`, undefined, gw.userSecret);
    gw.emulator.addFault({ fault: { kind: 'status', status: 500, error: 'boom' }, path: '/api/generate', times: 1 });
    await post(gw, `mutation($input: GenerateInput!) { generate(input: $input) { text } }`, input, gw.userSecret);
    // Revocation, and an export that contains every prompt.
    await post(gw, 'mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: temp.key.id }, gw.adminSecret);
    await (await fetch(`${gw.url}/export/conversations.csv`, { headers: { 'x-api-key': gw.adminSecret } })).text();
    await client.dispose();
  });

  it('never contain a secret, at any level', () => {
    expect(lines.length).toBeGreaterThan(10);
    // The raw text covers every level, debug included.
    for (const secret of secrets) {
      expect(raw).not.toContain(secret);
      expect(raw).not.toContain(secret.slice(14)); // nor its random part without the display prefix
    }
  });

  it('never contain a prompt (or an answer echoing it) at info level or above', () => {
    const info = lines.filter((l) => l.level >= INFO);
    expect(info.length).toBeGreaterThan(10);
    for (const line of info) expect(JSON.stringify(line)).not.toContain(CANARY);
  });

  it('log every GraphQL operation at info with request id, key prefix, outcome and duration', () => {
    const ops = lines.filter((l) => l.msg === 'graphql operation');
    const generates = ops.filter((l) => (l.fields as string[]).includes('generate'));
    // 3 over HTTP for the temporary key (1 ok, 2 refused), 1 over websocket, 1 over SSE, 1 upstream failure.
    expect(generates).toHaveLength(6);
    for (const op of ops) {
      expect(op.level).toBe(INFO);
      expect(op.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(typeof op.durationMs).toBe('number');
      expect(['ok', 'error']).toContain(op.outcome);
    }
    expect(new Set(ops.map((o) => o.requestId)).size).toBe(ops.length);
    expect(generates.filter((o) => o.operation === 'subscription')).toHaveLength(2);
    expect(generates.flatMap((o) => (o.errorCodes as string[] | undefined) ?? []).sort()).toEqual(['RATE_LIMITED', 'RATE_LIMITED', 'UPSTREAM_ERROR']);
    expect(generates.every((o) => typeof o.key === 'string' && (o.key as string).startsWith('llmgw_') && (o.key as string).length === 10)).toBe(true);
    // The bad key is refused at the auth edge, before any operation runs: logged there, with no key.
    expect(ops.find((o) => (o.fields as string[]).includes('me'))).toBeUndefined();
    expect(lines.find((l) => l.msg === 'authentication refused')).toMatchObject({ level: INFO, outcome: 'bad-key', ip: expect.any(String) });
    expect(lines.find((l) => l.msg === 'authentication refused')).not.toHaveProperty('key');
  });

  it('log each generation\'s outcome, model and durations, refusals, revocation and the export', () => {
    const finished = lines.filter((l) => l.msg === 'generation finished');
    expect(finished.map((l) => l.outcome).sort()).toEqual(['COMPLETE', 'COMPLETE', 'COMPLETE', 'ERROR']);
    for (const l of finished) expect(l).toMatchObject({ model: 'llama3.2', requestId: expect.any(String), key: expect.stringMatching(/^llmgw_/), durationMs: expect.any(Number) });
    expect(lines.filter((l) => l.msg === 'generation refused').map((l) => l.errorCode)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
    expect(lines.find((l) => l.msg === 'api key revoked')).toMatchObject({ key: expect.stringMatching(/^llmgw_/) });
    expect(lines.find((l) => l.msg === 'conversations exported')).toMatchObject({ outcome: 'ok', rows: 6, key: expect.stringMatching(/^llmgw_/) });
  });
});
