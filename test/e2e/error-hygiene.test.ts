import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GraphQLResponse, type TestGateway, collect, post, sse, startGateway, wsClient } from '../helpers/gateway.js';
import { captureLog } from '../helpers/log-capture.js';
import { rawSocket } from '../helpers/raw-ws.js';

const GEN = 'subscription($input: GenerateInput!) { generate(input: $input) { type delta } }';
const input = { input: { model: 'llama3.2', prompt: 'hello' } };

let gw: TestGateway;
const capture = captureLog('info');
beforeAll(async () => {
  gw = await startGateway({ log: capture.log });
});
afterAll(() => gw?.stop());

/** What a client must never see: internals of the database, the file system or the code. */
const LEAKS = /sqlite|no such table|generations_gone|api_keys_gone|SELECT|INSERT|UPDATE |QueryFailedError|\/tmp\/|\/work\/|node_modules|\.ts:\d|\bat [\w.<>]+ \(|stack/i;

function expectMaskedInternalError(payload: unknown) {
  const text = JSON.stringify(payload);
  expect(text).not.toMatch(LEAKS);
  expect(text).not.toMatch(/Unexpected error/);
  const errors = (payload as GraphQLResponse).errors ?? (payload as GraphQLResponse['errors']);
  const error = (Array.isArray(errors) ? errors : [])[0];
  expect(error?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
  const errorId = error?.extensions?.errorId as string;
  expect(errorId).toMatch(/^[0-9a-f-]{36}$/);
  expect(error?.message).toContain(errorId);
  // The same id is in the log, with the real cause.
  const line = capture.lines().find((l) => l.errorId === errorId);
  expect(line).toBeDefined();
  expect(JSON.stringify(line)).toMatch(/no such table/);
}

async function rename(from: string, to: string) {
  await gw.orm.query(`ALTER TABLE "${from}" RENAME TO "${to}"`);
}

describe('error hygiene: an unexpected failure (the usage-log table is gone)', () => {
  beforeAll(() => rename('generations', 'generations_gone'));
  afterAll(() => rename('generations_gone', 'generations'));

  it('websocket subscription: a typed INTERNAL_SERVER_ERROR with an errorId found in the log, no SQL or paths', async () => {
    const client = wsClient(gw, gw.userSecret);
    const results = await collect(client, GEN, input).done;
    await client.dispose();
    expect(results).toHaveLength(1);
    expectMaskedInternalError(results[0]);
  });

  it('SSE subscription: the same', async () => {
    const { status, events } = await sse(gw, GEN, input, gw.userSecret);
    expect(status).toBe(200);
    expect(events).toHaveLength(1);
    expectMaskedInternalError(events[0]);
  });

  it('HTTP mutation: the same', async () => {
    const { body } = await post(gw, 'mutation($input: GenerateInput!) { generate(input: $input) { text } }', input, gw.userSecret);
    expectMaskedInternalError(body);
  });
});

describe('error hygiene: authentication itself fails (the keys table is gone)', () => {
  beforeAll(() => rename('api_keys', 'api_keys_gone'));
  afterAll(() => rename('api_keys_gone', 'api_keys'));

  it('HTTP: masked, with an errorId in the log', async () => {
    const res = await fetch(gw.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': gw.userSecret },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    expect(res.status).toBeGreaterThanOrEqual(200);
    expectMaskedInternalError(await res.json());
  });

  it('websocket connection_init: closed with 4500 and an errorId (found in the log) as the only detail', async () => {
    const s = rawSocket(gw);
    await s.opened;
    s.send({ type: 'connection_init', payload: { 'x-api-key': gw.userSecret } });
    const { code, reason } = await s.closed;
    expect(code).toBe(4500);
    expect(reason).not.toMatch(LEAKS);
    const errorId = /errorId ([0-9a-f-]{36})/.exec(reason)?.[1];
    expect(errorId).toBeDefined();
    expect(capture.lines().some((l) => l.errorId === errorId)).toBe(true);
  });
});

describe('after the failures', () => {
  it('keeps serving: health and a real generation', async () => {
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
    const client = wsClient(gw, gw.userSecret);
    const results = await collect<{ generate: { type: string } }>(client, GEN, input).done;
    await client.dispose();
    expect(results.at(-1)?.data?.generate.type).toBe('DONE');
  });
});
