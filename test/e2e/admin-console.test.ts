// The admin console's server side: GET /, the static assets at /admin (built by the global
// setup with esbuild), their size budget, and the GraphQL the console relies on: the live view
// of running generations, cancelling any key's generation, key search and every key's usage log.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_GZIP_BUDGET, ADMIN_OUT, gzippedSizes } from '../../scripts/build-admin.mjs';
import { Generation } from '../../src/entities/generation.js';
import { VERSION } from '../../src/version.js';
import { type TestGateway, collect, post, startGateway, wsClient } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ emulator: { tokenDelayMs: 0 } });
});
afterAll(async () => {
  await gw?.stop();
});

const code = (body: { errors?: Array<{ extensions?: Record<string, unknown> }> }) => body.errors?.[0]?.extensions?.code;

interface LiveRow {
  id: string;
  apiKeyName: string;
  model: string;
  phase: string;
  queuePosition: number | null;
  completionTokens: number;
  tokensPerSecond: number | null;
}

describe('GET / and /admin', () => {
  it('redirects a browser to /admin/ and describes the service to other clients', async () => {
    const browser = await fetch(`${gw.url}/`, { headers: { accept: 'text/html,application/xhtml+xml' }, redirect: 'manual' });
    expect(browser.status).toBe(302);
    expect(browser.headers.get('location')).toBe('/admin/');
    const client = await fetch(`${gw.url}/`, { headers: { accept: 'application/json' } });
    expect(client.status).toBe(200);
    expect(client.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await client.json()) as { name: string; version: string; endpoints: Record<string, string> };
    expect(body.name).toBe('llm-graphql-gateway');
    expect(body.version).toBe(VERSION);
    expect(Object.values(body.endpoints)).toEqual(expect.arrayContaining(['/graphql', '/v1', '/api', '/metrics', '/health', '/admin']));
    expect((await fetch(`${gw.url}/`, { method: 'POST' })).status).toBe(405);
  });

  it('serves the built page and its assets with a same-origin-only CSP, and nothing else under /admin', async () => {
    const bare = await fetch(`${gw.url}/admin`, { redirect: 'manual' });
    expect(bare.status).toBe(308);
    expect(bare.headers.get('location')).toBe('/admin/');
    const page = await fetch(`${gw.url}/admin/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const html = await page.text();
    expect(html).toBe(readFileSync(join(ADMIN_OUT, 'index.html'), 'utf8'));
    // Every asset the page names is served from the gateway itself (no CDN).
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.sort()).toEqual(['app.css', 'app.js', 'favicon.svg']);
    for (const a of assets) {
      const r = await fetch(`${gw.url}/admin/${a}`);
      expect(r.status, a).toBe(200);
      expect(Buffer.from(await r.arrayBuffer()).equals(readFileSync(join(ADMIN_OUT, a))), a).toBe(true);
    }
    for (const bad of ['/admin/missing.js', '/admin/..%2Fmain.js', '/admin/.hidden.js', '/admin/sub/app.js']) {
      expect((await fetch(`${gw.url}${bad}`)).status, bad).toBe(404);
    }
    expect((await fetch(`${gw.url}/admin/`, { method: 'DELETE' })).status).toBe(405);
  });

  it('keeps the built assets under the gzip budget', () => {
    const sizes = gzippedSizes();
    expect(Object.keys(sizes.files).sort()).toEqual(['app.css', 'app.js', 'favicon.svg', 'index.html']);
    expect(sizes.files['app.js']).toBeGreaterThan(10_000); // the bundle really holds the UI and its libraries
    expect(sizes.total).toBeLessThan(ADMIN_GZIP_BUDGET);
    expect(ADMIN_GZIP_BUDGET).toBe(300 * 1024);
  });
});

describe('GraphQL for the console', () => {
  it('liveGenerations shows a running stream with its key, model and tokens/s; an admin cancels it; USER keys are refused', async () => {
    gw.emulator.setTokenDelay(150);
    const admin = wsClient(gw, gw.adminSecret);
    const user = wsClient(gw, gw.userSecret);
    try {
      const snapshots: LiveRow[][] = [];
      const live = collect<{ liveGenerations: LiveRow[] }>(
        admin,
        'subscription { liveGenerations { id apiKeyName model phase queuePosition completionTokens tokensPerSecond } }',
      );
      const stream = collect<{ generate: { type: string; generationId: string } }>(
        user,
        'subscription { generate(input: { model: "llama3.2", prompt: "Tell me a long story about the sea" }) { type generationId } }',
      );
      const id = await until(() => stream.results.find((r) => r.data?.generate)?.data!.generate.generationId, 10_000, 'generationId');
      const row = await until(
        () => {
          for (const r of live.results) if (r.data) snapshots.push(r.data.liveGenerations);
          live.results.length = 0;
          return snapshots.at(-1)?.find((g) => g.id === id && g.tokensPerSecond !== null);
        },
        10_000,
        'a live row with tokens/s',
      );
      expect(row).toMatchObject({ apiKeyName: 'test user', model: 'llama3.2', phase: 'GENERATING', queuePosition: null });
      expect(row.completionTokens).toBeGreaterThanOrEqual(2);
      expect(row.tokensPerSecond!).toBeGreaterThan(0);
      expect(row.tokensPerSecond!).toBeLessThan(1000 / 150 + 5); // paced at one token per 150 ms

      const denied = await post(gw, 'mutation($id: ID!) { cancelGeneration(id: $id) }', { id }, (await gw.app.services.keys.create({ name: 'other user', role: 'USER' })).secret);
      expect(code(denied.body)).toBe('NOT_FOUND');
      const forbidden = await post(gw, '{ liveGenerations { id } }', undefined, gw.userSecret);
      expect(code(forbidden.body)).toBe('FORBIDDEN');

      const cancelled = await post<{ cancelGeneration: boolean }>(gw, 'mutation($id: ID!) { cancelGeneration(id: $id) }', { id }, gw.adminSecret);
      expect(cancelled.body).toEqual({ data: { cancelGeneration: true } });
      const events = await stream.done;
      expect(events.at(-1)?.errors?.[0]?.extensions?.code).toBe('CANCELLED');
      expect((await gw.orm.getRepository(Generation).findOneByOrFail({ id })).status).toBe('CANCELLED');
      // The live view drops it.
      await until(
        () => {
          for (const r of live.results) if (r.data) snapshots.push(r.data.liveGenerations);
          live.results.length = 0;
          return snapshots.at(-1)?.every((g) => g.id !== id);
        },
        5000,
        'the cancelled row to leave the live view',
      );
      const again = await post(gw, 'mutation($id: ID!) { cancelGeneration(id: $id) }', { id }, gw.adminSecret);
      expect(code(again.body)).toBe('NOT_FOUND');
      live.cancel();
    } finally {
      gw.emulator.setTokenDelay(0);
      await Promise.all([admin.dispose(), user.dispose()]);
    }
  });

  it('apiKeys search finds keys by name or prefix, case-insensitively, and treats % and _ literally', async () => {
    const made = await gw.app.services.keys.create({ name: 'Search_Me 100%', role: 'USER' });
    await gw.app.services.keys.create({ name: 'SearchXMe', role: 'USER' });
    const find = async (search: string) =>
      (await post<{ apiKeys: { totalCount: number; nodes: Array<{ name: string }> } }>(gw, 'query($s: String) { apiKeys(search: $s) { totalCount nodes { name } } }', { s: search }, gw.adminSecret))
        .body.data!.apiKeys;
    expect((await find('search_me')).nodes.map((k) => k.name)).toEqual(['Search_Me 100%']);
    expect((await find('100%')).nodes.map((k) => k.name)).toEqual(['Search_Me 100%']);
    expect((await find('searchxme')).totalCount).toBe(1);
    expect((await find(made.key.prefix)).nodes.map((k) => k.name)).toEqual(['Search_Me 100%']);
    expect((await find('no such key')).totalCount).toBe(0);
    const tooLong = await post(gw, 'query($s: String) { apiKeys(search: $s) { totalCount } }', { s: 'x'.repeat(201) }, gw.adminSecret);
    expect(code(tooLong.body)).toBe('BAD_USER_INPUT');
  });

  it('generations(allKeys: true) lists every key\'s requests for an admin only', async () => {
    const other = await gw.app.services.keys.create({ name: 'log user', role: 'USER' });
    for (const secret of [gw.userSecret, other.secret]) {
      const r = await post(gw, 'mutation { generate(input: { model: "llama3.2", prompt: "hi" }) { generationId } }', undefined, secret);
      expect(r.body.errors).toBeUndefined();
    }
    const all = await post<{ generations: { totalCount: number; nodes: Array<{ apiKeyId: string; status: string }> } }>(
      gw,
      '{ generations(allKeys: true, first: 50) { totalCount nodes { apiKeyId status } } }',
      undefined,
      gw.adminSecret,
    );
    const keys = new Set(all.body.data!.generations.nodes.map((n) => n.apiKeyId));
    expect(keys.has(other.key.id)).toBe(true);
    expect(keys.size).toBeGreaterThanOrEqual(2);
    expect(all.body.data!.generations.totalCount).toBe(await gw.orm.getRepository(Generation).count());
    const asUser = await post(gw, '{ generations(allKeys: true) { totalCount } }', undefined, gw.userSecret);
    expect(code(asUser.body)).toBe('FORBIDDEN');
    const both = await post(gw, 'query($id: ID) { generations(allKeys: true, apiKeyId: $id) { totalCount } }', { id: other.key.id }, gw.adminSecret);
    expect(code(both.body)).toBe('BAD_USER_INPUT');
  });
});
