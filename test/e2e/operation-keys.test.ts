// Websockets whose key comes with each operation (`extensions.headers`), as GraphiQL sends it:
// accepted at connection init without a key, every operation checked, revocation still closes them.
import { type Client, createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type TestGateway, post, startGateway } from '../helpers/gateway.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
});

/** A client like GraphiQL's: empty connection_init, the headers in each operation's extensions. */
function graphiqlLike(closed: (code: number) => void): Client {
  return createClient({ url: gw.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, onNonLazyError: () => {}, on: { closed: (e) => closed((e as { code: number }).code) } });
}

function run(client: Client, query: string, headers?: Record<string, string>): Promise<{ data?: Record<string, any>; errors?: Array<{ extensions?: { code?: string } }> }> {
  return new Promise((resolve, reject) => {
    let last: { data?: Record<string, any>; errors?: Array<{ extensions?: { code?: string } }> } = {};
    client.subscribe(
      { query, ...(headers ? { extensions: { headers } } : {}) },
      { next: (r) => (last = r as typeof last), error: (e) => (Array.isArray(e) ? resolve({ errors: e }) : reject(e)), complete: () => resolve(last) },
    );
  });
}

describe('the key in each operation (GraphiQL over graphql-ws)', () => {
  it('serves operations whose extensions carry a valid key, on a socket opened without one', async () => {
    const codes: number[] = [];
    const client = graphiqlLike((c) => codes.push(c));
    const me = await run(client, '{ me { name role } }', { 'x-api-key': gw.userSecret });
    expect(me.data?.me).toEqual({ name: 'test user', role: 'USER' });
    // Another key on the same socket is another principal (GraphiQL users may edit the headers).
    const admin = await run(client, '{ me { role } }', { Authorization: `Bearer ${gw.adminSecret}` });
    expect(admin.data?.me.role).toBe('ADMIN');
    const events = await run(client, 'subscription { generate(input: {model: "llama3.2", prompt: "hi"}) { type } }', { 'x-api-key': gw.userSecret });
    expect(events.data?.generate.type).toBe('DONE');
    expect(codes).toEqual([]);
    await client.dispose();
  });

  it('answers an operation without a key, or with a wrong one, UNAUTHENTICATED and closes the socket (4403)', async () => {
    for (const headers of [undefined, { 'x-api-key': 'llmgw_wrong-key' }]) {
      let closedWith: (code: number) => void = () => {};
      const closed = new Promise<number>((r) => (closedWith = r));
      const client = graphiqlLike((c) => closedWith(c));
      const r = await run(client, '{ me { id } }', headers);
      expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      expect(await closed).toBe(4403);
      await client.dispose();
    }
  });

  it('still refuses a wrong key in connectionParams at connection init (4403)', async () => {
    const closed = new Promise<number>((resolve) => {
      const client = createClient({ url: gw.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, onNonLazyError: () => {}, connectionParams: { 'x-api-key': 'llmgw_wrong' }, on: { closed: (e) => resolve((e as { code: number }).code) } });
      client.subscribe({ query: '{ me { id } }', extensions: { headers: { 'x-api-key': gw.userSecret } } }, { next: () => {}, error: () => {}, complete: () => {} });
    });
    expect(await closed).toBe(4403);
  });

  it('closes the socket when a key it used is revoked', async () => {
    const created = await post<{ createApiKey: { secret: string; key: { id: string } } }>(
      gw,
      'mutation { createApiKey(input: {name: "graphiql user", role: USER}) { secret key { id } } }',
      undefined,
      gw.adminSecret,
    );
    const { secret, key } = created.body.data!.createApiKey;
    let closedWith: (code: number) => void = () => {};
    const closed = new Promise<number>((r) => (closedWith = r));
    const client = graphiqlLike((c) => closedWith(c));
    expect((await run(client, '{ me { name } }', { 'x-api-key': secret })).data?.me.name).toBe('graphiql user');
    const revoked = await post(gw, 'mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: key.id }, gw.adminSecret);
    expect(revoked.body.errors).toBeUndefined();
    expect(await closed).toBe(4403);
    await client.dispose();
  });
});
