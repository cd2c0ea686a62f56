// Security round 2 (issue 18), findings 8-12: what the gateway gave away (guessable export route,
// formula cells, host URLs, long key prefixes, Ollama's own error texts), now closed.
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey } from '../../src/entities/api-key.js';
import { health } from '../helpers/attack.js';
import { type TestGateway, collect, post, startGateway, wsClient } from '../helpers/gateway.js';
import { captureLog } from '../helpers/log-capture.js';
import { until } from '../helpers/wait.js';

const ADMIN_API_KEY = 'chosen-admin-secret-24ch';
const capture = captureLog('info');
let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({
    env: { ADMIN_API_KEY, AUTH_FAILURE_LIMIT: '3', AUTH_FAILURE_WINDOW_SECONDS: '2', GPU_VRAM_BYTES: '', NVIDIA_SMI_PATH: '/opt/secret-tools/nvidia-smi' },
    log: capture.log,
  });
});
afterAll(() => gw?.stop());

const exportCsv = (secret: string, query = '') => fetch(`${gw.url}/export/conversations.csv${query}`, { headers: { 'x-api-key': secret } });

describe('8. the export route counts failed keys', () => {
  it('three wrong admin keys, then 429 RATE_LIMITED even for the right one, until the window ends', async () => {
    for (let i = 0; i < 3; i++) expect((await exportCsv(`guess-${i}-xxxxxxxxxxxxxxxx`)).status).toBe(401);
    const blocked = await exportCsv(ADMIN_API_KEY);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await blocked.json()) as { errors: Array<{ extensions: Record<string, unknown> }> }).errors[0].extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'authFailures' });
    expect((await health(gw, '127.0.0.1')).status).toBe(200);
    await until(async () => (await exportCsv(ADMIN_API_KEY)).status === 200, 5000, 'the throttle window to end');
  });
});

describe('9. CSV formula injection', () => {
  it('neutralises cells starting with =, +, -, @, TAB or CR with a leading quote; ?raw=true exports them as stored', async () => {
    const prompts = ['=HYPERLINK("http://evil.example","x")', '+1+1', '-2+3', '@SUM(A1)', '\tcmd', '\rcmd', 'plain'];
    for (const p of prompts) {
      const r = await post(gw, 'mutation($p: String!) { generate(input: { model: "llama3.2", prompt: $p, options: { maxTokens: 1 } }) { text } }', { p }, gw.userSecret);
      expect(r.body.errors).toBeUndefined();
    }
    const cells = async (query: string) => {
      const res = await exportCsv(ADMIN_API_KEY, query);
      expect(res.status).toBe(200);
      const rows = parse(await res.text(), { columns: true }) as Array<{ prompt: string }>;
      return rows.map((r) => r.prompt);
    };
    const safe = await cells('');
    for (const p of prompts) expect(safe).toContain(p === 'plain' ? p : `'${p}`);
    const raw = await cells('?raw=true');
    for (const p of prompts) expect(raw).toContain(p);
    expect((await health(gw, '127.0.0.1')).status).toBe(200);
  });
});

describe('10. host URLs and probe paths are admin only', () => {
  const Q = '{ models { name hosts { host } } gpu { host warning } }';
  type R = { models: Array<{ hosts: Array<{ host: string | null }> }>; gpu: { host: string | null; warning: string | null } };

  it('a USER key gets null hosts, a warning without the nvidia-smi path, and an unknown-host message without the list', async () => {
    const user = await post<R>(gw, Q, undefined, gw.userSecret);
    expect(user.body.errors).toBeUndefined();
    const placements = user.body.data!.models.flatMap((m) => m.hosts);
    expect(placements.length).toBeGreaterThan(0);
    expect(placements.every((p) => p.host === null)).toBe(true);
    expect(user.body.data!.gpu.host).toBeNull();
    expect(user.body.data!.gpu.warning).not.toContain('/opt/secret-tools');
    expect(JSON.stringify(user.body)).not.toContain(gw.emulator.url);
    const unknown = await post(gw, '{ gpu(host: "http://10.0.0.9:11434") { freeBytes } }', undefined, gw.userSecret);
    expect(unknown.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'host' });
    expect(unknown.body.errors?.[0]?.message).not.toContain(gw.emulator.url);

    const admin = await post<R>(gw, Q, undefined, ADMIN_API_KEY);
    expect(admin.body.data!.models.flatMap((m) => m.hosts).some((p) => p.host === gw.emulator.url)).toBe(true);
    expect(admin.body.data!.gpu.warning).toContain('/opt/secret-tools/nvidia-smi');
    const adminUnknown = await post(gw, '{ gpu(host: "http://10.0.0.9:11434") { freeBytes } }', undefined, ADMIN_API_KEY);
    expect(adminUnknown.body.errors?.[0]?.message).toContain(gw.emulator.url);
    expect((await health(gw, '127.0.0.1')).status).toBe(200);
  });

  it('modelEvents carries host null for a USER key and the URL for an admin key', async () => {
    type E = { modelEvents: { type: string; host: string | null } };
    const userClient = wsClient(gw, gw.userSecret);
    const adminClient = wsClient(gw, ADMIN_API_KEY);
    try {
      const asUser = collect<E>(userClient, 'subscription { modelEvents { type host } }');
      const asAdmin = collect<E>(adminClient, 'subscription { modelEvents { type host } }');
      // Subscriptions are set up once the sockets are acknowledged; retry the load until both heard it.
      await until(async () => {
        await post(gw, 'mutation { loadModel(name: "llama3.2") { host } }', undefined, ADMIN_API_KEY);
        return asUser.results.length > 0 && asAdmin.results.length > 0;
      }, 10_000, 'a LOADED event on both sockets', 200);
      expect(asUser.results[0].data?.modelEvents.host).toBeNull();
      expect(asAdmin.results[0].data?.modelEvents.host).toBe(gw.emulator.url);
      asUser.cancel();
      asAdmin.cancel();
    } finally {
      await userClient.dispose();
      await adminClient.dispose();
    }
  });
});

describe('11. display prefixes', () => {
  it('keep 4 characters of a chosen ADMIN_API_KEY and llmgw_ plus 4 of a generated key; the log shows no more', async () => {
    const rows = await gw.orm.getRepository(ApiKey).find();
    const admin = rows.find((k) => k.role === 'ADMIN')!;
    expect(admin.prefix).toBe(ADMIN_API_KEY.slice(0, 4));
    const { key, secret } = await gw.app.services.keys.create({ name: 'fresh', role: 'USER' });
    expect(key.prefix).toBe(secret.slice(0, 10));
    expect(capture.text()).not.toContain(ADMIN_API_KEY.slice(0, 5));
    expect((await health(gw, '127.0.0.1')).status).toBe(200);
  });
});

describe("12. Ollama's error texts stay in the log", () => {
  const SECRET_TEXT = 'open /var/lib/ollama/blobs/sha256-deadbeef: permission denied';
  const GEN = 'mutation { generate(input: { model: "llama3.2", prompt: "hi" }) { text } }';

  it.each([
    { name: 'an HTTP 500 before the stream', fault: { kind: 'status' as const, status: 500, error: SECRET_TEXT }, code: 'UPSTREAM_ERROR' },
    { name: 'an HTTP 400', fault: { kind: 'status' as const, status: 400, error: SECRET_TEXT }, code: 'BAD_USER_INPUT' },
    { name: 'an error line mid-stream', fault: { kind: 'errorAfter' as const, tokens: 2, error: SECRET_TEXT }, code: 'UPSTREAM_ERROR' },
  ])('$name reaches the client as the gateway\'s own message; Ollama\'s text is logged', async ({ fault, code }) => {
    const logged = () => capture.lines().filter((l) => l.upstreamError === SECRET_TEXT).length;
    const before = logged();
    gw.emulator.addFault({ fault, path: '/api/generate', times: 1 });
    const r = await post(gw, GEN, undefined, gw.userSecret);
    expect(r.body.errors?.[0]?.extensions?.code, JSON.stringify(r.body)).toBe(code);
    expect(JSON.stringify(r.body)).not.toContain('/var/lib/ollama');
    await until(() => logged() > before, 10_000, 'the upstream text in the log');
    expect((await health(gw, '127.0.0.1')).status).toBe(200);
  });
});
