// GraphiQL as a person uses it: headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser download) opens /graphql, puts the API key in the headers editor,
// runs the `generate` subscription over graphql-ws and watches tokens arrive in the result pane.
// The screenshot is kept in test-artifacts/graphiql.png.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const available = existsSync(CHROMIUM);
if (!available) console.warn(`graphiql-browser.test.ts: skipped, ${CHROMIUM} is not installed (apt-get install -y chromium).`);

describe.skipIf(!available)(`GraphiQL in Chromium${available ? '' : ` (skipped: ${CHROMIUM} is not installed)`}`, () => {
  let gw: TestGateway;
  let browser: BrowserContext;
  let profile: string;

  beforeAll(async () => {
    gw = await startGateway({ emulator: { tokenDelayMs: 60 } });
    profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 720 },
      timeout: 30_000,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // Nothing but loopback resolves: the page must work without any outside host.
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('runs the generate subscription over websockets with the key from the headers editor, tokens showing as they arrive', { timeout: 60_000 }, async () => {
    const page = browser.pages()[0] ?? (await browser.newPage());
    const outside: string[] = [];
    page.on('request', (r) => {
      const url = r.url();
      if (!/^(https?|wss?):\/\/127\.0\.0\.1[:/]/.test(url) && !/^(data|blob):/.test(url)) outside.push(url);
    });
    const frames: string[] = [];
    page.on('websocket', (ws) => ws.on('framesent', (f) => frames.push(String(f.payload))));

    await page.goto(gw.graphqlUrl, { waitUntil: 'load' });
    await page.locator('.graphiql-container section.graphiql-query-editor .monaco-editor').waitFor({ timeout: 20_000 });
    await expect(page.title()).resolves.toBe('LLM gateway');
    const query = await page.locator('section.graphiql-query-editor .view-lines').innerText();
    expect(query.replace(/\s+/g, ' ')).toContain('subscription { generate(input: { model: "llama3.2"');

    // Replace the placeholder in the Headers tab the way a person does: select all, type the key.
    await page.getByRole('button', { name: 'Headers', exact: true }).click();
    const headers = page.locator('section.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden) .monaco-editor');
    await headers.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(JSON.stringify({ 'x-api-key': gw.userSecret }));
    // The editor closes brackets and quotes by itself; drop what it added after the cursor.
    await page.keyboard.press('Shift+Control+End');
    await page.keyboard.press('Delete');
    expect(JSON.parse((await headers.locator('.view-lines').innerText()).replace(/\u00a0/g, ' '))).toEqual({ 'x-api-key': gw.userSecret });

    await page.getByRole('button', { name: 'Execute query (Ctrl-Enter)' }).click();

    // Watch the result pane: it shows each event as it arrives, TOKEN deltas first, then DONE.
    const result = page.locator('section.result-window .view-lines');
    const seen: Array<{ type: string; delta: string | null; usage?: { completionTokens: number } | null }> = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const text = (await result.innerText()).replace(/\u00a0/g, ' ').trim();
      if (text.startsWith('{')) {
        const shown = JSON.parse(text) as { data?: { generate: (typeof seen)[number] }; errors?: unknown };
        expect(shown.errors, text).toBeUndefined();
        const event = shown.data!.generate;
        if (JSON.stringify(seen.at(-1)) !== JSON.stringify(event)) seen.push(event);
        if (event.type === 'DONE') break;
      }
      await page.waitForTimeout(25);
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'graphiql.png') });

    const done = seen.at(-1)!;
    expect(done.type).toBe('DONE');
    const tokens = seen.filter((e) => e.type === 'TOKEN');
    expect(tokens.length, JSON.stringify(seen)).toBeGreaterThanOrEqual(3); // several states while streaming

    // The key travelled with the operation (GraphiQL's connection_init is empty), and the answer is the stored one.
    const init = JSON.parse(frames.find((f) => f.includes('"connection_init"'))!) as { payload?: Record<string, unknown> };
    expect(init.payload ?? {}).toEqual({});
    const subscribe = JSON.parse(frames.find((f) => f.includes('"subscribe"'))!) as { payload: { extensions: { headers: Record<string, string> } } };
    expect(subscribe.payload.extensions.headers['x-api-key']).toBe(gw.userSecret);
    const [row] = await gw.orm.getRepository(Generation).find({ order: { createdAt: 'DESC' }, take: 1, relations: { apiKey: true } });
    expect(row).toMatchObject({ status: 'COMPLETE', streamed: true, prompt: 'Why is the sky blue?', completionTokens: done.usage!.completionTokens });
    expect(row.apiKey?.name).toBe('test user');
    let at = 0;
    for (const t of tokens) {
      // Each delta the pane showed is the next piece of the stored answer, in order.
      const found = row.response.indexOf(t.delta!, at);
      expect(found, `"${t.delta}" after offset ${at} in ${JSON.stringify(row.response)}`).toBeGreaterThanOrEqual(at);
      at = found + t.delta!.length;
    }

    expect(outside).toEqual([]);
  });
});
