import { serverAudits } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestGateway, startGateway } from '../helpers/gateway.js';

/** Audits graphql-http 1.23 runs (13 MUST, 23 SHOULD, 25 MAY), as the README states. */
const AUDIT_COUNT = 61;

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(() => gw?.stop());

/** What the gateway answered to each request of the audit that is running. */
let exchanges: Array<{ method: string; status: number; code?: unknown }> = [];
const recordingFetch = (secret: string | undefined) => async (input: RequestInfo | URL, init: RequestInit = {}) => {
  const headers = new Headers(init.headers);
  if (secret) headers.set('x-api-key', secret);
  const res = await fetch(input, { ...init, headers });
  const body = (await res.clone().json().catch(() => null)) as { errors?: Array<{ extensions?: { code?: unknown } }> } | null;
  exchanges.push({ method: (init.method ?? 'GET').toUpperCase(), status: res.status, code: body?.errors?.[0]?.extensions?.code });
  return res;
};

const outcome = (r: { status: string; reason?: string }) => (r.status === 'ok' ? 'ok' : `${r.status}: ${r.reason}`);

describe('GraphQL over HTTP (graphql-http serverAudits) with an API key', () => {
  const audits = serverAudits({ url: () => gw.graphqlUrl, fetchFn: recordingFetch('placeholder') });

  it(`runs all ${AUDIT_COUNT} audits`, () => {
    expect(audits).toHaveLength(AUDIT_COUNT);
  });

  // The audits send anonymous `{ __typename }`-style operations; the key is added the way apps send it.
  it.each(audits.map((a) => [a.id, a.name] as const))('%s %s', async (id) => {
    const audit = serverAudits({ url: () => gw.graphqlUrl, fetchFn: recordingFetch(gw.userSecret) }).find((a) => a.id === id)!;
    expect(outcome((await audit.fn()) as { status: string; reason?: string })).toBe('ok');
  });
});

describe('GraphQL over HTTP (graphql-http serverAudits) without an API key', () => {
  // Without a key only GET (health, GraphiQL's page) is served: a POST is refused with 401
  // UNAUTHENTICATED before its body is parsed (docs/security.md). So an audit that POSTs cannot
  // see what it checks; one that only GETs must still pass.
  const audits = serverAudits({ url: () => gw.graphqlUrl, fetchFn: recordingFetch(undefined) });

  it.each(audits.map((a) => [a.id, a.name, a] as const))('%s %s', async (_id, _name, audit) => {
    exchanges = [];
    const result = (await audit.fn()) as { status: string; reason?: string };
    const posts = exchanges.filter((e) => e.method === 'POST');
    if (posts.length === 0) expect(outcome(result)).toBe('ok');
    else for (const p of posts) expect(p).toEqual({ method: 'POST', status: 401, code: 'UNAUTHENTICATED' });
  });

  it('leaves the GET audits passing: 11 of 61', async () => {
    let passing = 0;
    for (const audit of audits) if ((await audit.fn()).status === 'ok') passing++;
    expect(passing).toBe(11);
  });
});
