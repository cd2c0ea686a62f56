// Schema and resolver behaviour through yoga.fetch, in-process (helpers/in-process.ts): the real
// schema, services, SQLite database and emulator, without a port. What the HTTP edge does before
// yoga (401 for a bad key, body limits, websockets) is tested by the e2e tests that boot the server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessGateway, startInProcess } from '../helpers/in-process.js';

let gw: InProcessGateway;
beforeAll(async () => {
  gw = await startInProcess();
});
afterAll(async () => {
  await gw?.stop();
});

/** The codes of a response's errors, in order. */
const codes = (body: { errors?: Array<{ extensions?: Record<string, unknown> }> }) => (body.errors ?? []).map((e) => e.extensions?.code);

describe('schema errors carry extensions.code', () => {
  it('a syntax error is GRAPHQL_PARSE_FAILED, an unknown field GRAPHQL_VALIDATION_FAILED; neither runs a resolver', async () => {
    const parse = await gw.graphql('{ me { name ', undefined, gw.userSecret);
    expect(codes(parse.body)).toEqual(['GRAPHQL_PARSE_FAILED']);
    expect(parse.body.data).toBeUndefined();
    const unknown = await gw.graphql('{ me { nope } }', undefined, gw.userSecret);
    expect(codes(unknown.body)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(unknown.body.errors?.[0].message).toContain('Cannot query field "nope" on type "Viewer"');
    expect(unknown.body.data).toBeUndefined();
  });

  it('a variable of the wrong type is refused before the resolver, with a code', async () => {
    const r = await gw.graphql('mutation($n: Int!) { addCredits(input: { id: "x", amount: $n }) { credits } }', { n: 'ten' }, gw.adminSecret);
    expect(r.body.errors?.length).toBe(1);
    expect(typeof r.body.errors?.[0].extensions?.code).toBe('string');
    expect(r.body.errors?.[0].message).toMatch(/\$n/);
    expect(r.body.data).toBeUndefined();
  });

  it('input out of range is BAD_USER_INPUT naming the field', async () => {
    const empty = await gw.graphql('mutation { createApiKey(input: { name: "" }) { secret } }', undefined, gw.adminSecret);
    expect(empty.body.errors?.[0]).toMatchObject({ path: ['createApiKey'], extensions: { code: 'BAD_USER_INPUT', field: 'name' } });
    expect(empty.body.data).toBeNull();
    const zero = await gw.graphql('mutation { addCredits(input: { id: "x", amount: 0 }) { credits } }', undefined, gw.adminSecret);
    expect(zero.body.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field: 'amount' } });
  });
});

describe('who may do what', () => {
  it('without a key: UNAUTHENTICATED, worded apart from a wrong key; health needs no key', async () => {
    const none = await gw.graphql('{ me { name } }');
    expect(none.body.errors?.[0]).toMatchObject({ message: 'A valid API key is required.', extensions: { code: 'UNAUTHENTICATED' } });
    expect(none.body.data).toBeNull();
    const wrong = await gw.graphql('{ me { name } }', undefined, 'llmgw_not-a-key-of-this-gateway');
    expect(wrong.body.errors?.[0]).toMatchObject({ message: 'The API key is invalid or revoked.', extensions: { code: 'UNAUTHENTICATED' } });
    const health = await gw.graphql<{ health: { status: string } }>('{ health { status } }');
    expect(health.body.errors).toBeUndefined();
    expect(health.body.data?.health.status).toBe('ok');
  });

  it('admin-only fields are FORBIDDEN to a USER key and served to the admin key', async () => {
    const LIST = '{ apiKeys(search: "test user") { totalCount nodes { name role } } }';
    const asUser = await gw.graphql(LIST, undefined, gw.userSecret);
    expect(asUser.body.errors?.[0]).toMatchObject({ path: ['apiKeys'], extensions: { code: 'FORBIDDEN' } });
    expect(asUser.body.data).toBeNull();
    const create = await gw.graphql('mutation { createApiKey(input: { name: "sneaky", role: ADMIN }) { secret } }', undefined, gw.userSecret);
    expect(codes(create.body)).toEqual(['FORBIDDEN']);
    const asAdmin = await gw.graphql<{ apiKeys: { totalCount: number; nodes: Array<{ name: string; role: string }> } }>(LIST, undefined, gw.adminSecret);
    expect(asAdmin.body.errors).toBeUndefined();
    expect(asAdmin.body.data?.apiKeys).toEqual({ totalCount: 1, nodes: [{ name: 'test user', role: 'USER' }] });
    // The refused creation left no key behind.
    const sneaky = await gw.graphql<{ apiKeys: { totalCount: number } }>('{ apiKeys(search: "sneaky") { totalCount } }', undefined, gw.adminSecret);
    expect(sneaky.body.data?.apiKeys.totalCount).toBe(0);
  });
});

describe('keys and credits', () => {
  it('a created key works at once with its starting credits; credits are added and taken, never below 0; a revoked key stops working', async () => {
    const created = await gw.graphql<{ createApiKey: { secret: string; key: { id: string; credits: number; role: string } } }>(
      'mutation { createApiKey(input: { name: "in-process", credits: 10 }) { secret key { id credits role } } }',
      undefined,
      gw.adminSecret,
    );
    expect(created.body.errors).toBeUndefined();
    const { secret, key } = created.body.data!.createApiKey;
    expect(key).toMatchObject({ credits: 10, role: 'USER' });
    const me = async () => (await gw.graphql<{ me: { name: string; credits: number } }>('{ me { name credits } }', undefined, secret)).body;
    expect((await me()).data?.me).toEqual({ name: 'in-process', credits: 10 });

    const add = (amount: number) => gw.graphql<{ addCredits: { credits: number } }>('mutation($id: ID!, $n: Int!) { addCredits(input: { id: $id, amount: $n }) { credits } }', { id: key.id, n: amount }, gw.adminSecret);
    expect((await add(5)).body.data?.addCredits.credits).toBe(15);
    // Taking more than the balance is refused whole, saying what is there.
    const overdraw = await add(-100);
    expect(overdraw.body.errors?.[0]).toMatchObject({ message: 'The key has 15 credits; 100 cannot be taken away.', extensions: { code: 'BAD_USER_INPUT', field: 'amount', credits: 15 } });
    expect((await me()).data?.me.credits).toBe(15);
    expect((await add(-15)).body.data?.addCredits.credits).toBe(0);
    expect((await me()).data?.me.credits).toBe(0);

    const revoked = await gw.graphql('mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: key.id }, gw.adminSecret);
    expect(revoked.body.errors).toBeUndefined();
    expect((await me()).errors?.[0]).toMatchObject({ message: 'The API key is invalid or revoked.', extensions: { code: 'UNAUTHENTICATED' } });
  });

  it('a generation is charged to the calling key: its balance falls by creditsCharged, and an empty balance is INSUFFICIENT_CREDITS', async () => {
    const created = await gw.graphql<{ createApiKey: { secret: string; key: { id: string } } }>(
      'mutation { createApiKey(input: { name: "pays", credits: 100 }) { secret key { id } } }',
      undefined,
      gw.adminSecret,
    );
    const { secret, key } = created.body.data!.createApiKey;
    const GENERATE = 'mutation { generate(input: { model: "llama3.2", prompt: "hi" }) { text creditsCharged } }';
    const done = await gw.graphql<{ generate: { text: string; creditsCharged: number } }>(GENERATE, undefined, secret);
    expect(done.body.errors).toBeUndefined();
    expect(done.body.data?.generate.text).toContain('You said: "hi"');
    const charged = done.body.data!.generate.creditsCharged;
    expect(charged).toBeGreaterThan(0);
    const after = await gw.graphql<{ me: { credits: number } }>('{ me { credits } }', undefined, secret);
    expect(after.body.data?.me.credits).toBe(100 - charged);

    const emptied = await gw.graphql<{ addCredits: { credits: number } }>('mutation($id: ID!, $n: Int!) { addCredits(input: { id: $id, amount: $n }) { credits } }', { id: key.id, n: -(100 - charged) }, gw.adminSecret);
    expect(emptied.body.data?.addCredits.credits).toBe(0);
    const requestsBefore = gw.emulator.requests.length;
    const broke = await gw.graphql(GENERATE, undefined, secret);
    expect(codes(broke.body)).toEqual(['INSUFFICIENT_CREDITS']);
    expect(gw.emulator.requests.length).toBe(requestsBefore); // refused before reaching the model
  });
});
