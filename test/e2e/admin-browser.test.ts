// The admin console as a person uses it, in headless Chromium (Debian's /usr/bin/chromium driven
// by playwright-core, no browser download): sign in, create a key and see its secret once, see
// the models and pull one with a progress bar, see the usage chart drawn, watch a generation run
// live and cancel it. Screenshots go to test-artifacts/admin-*.png.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { type TestGateway, collect, post, startGateway, wsClient } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const available = existsSync(CHROMIUM);
if (!available) console.warn(`admin-browser.test.ts: skipped, ${CHROMIUM} is not installed (apt-get install -y chromium).`);

describe.skipIf(!available)(`Admin console in Chromium${available ? '' : ` (skipped: ${CHROMIUM} is not installed)`}`, () => {
  let gw: TestGateway;
  let browser: BrowserContext;
  let profile: string;
  let page: Page;
  const outside: string[] = [];
  const consoleErrors: string[] = [];
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `admin-${name}.png`), fullPage: false });

  beforeAll(async () => {
    // A configured VRAM size, so the bars show used and free memory.
    gw = await startGateway({ emulator: { tokenDelayMs: 0, pullStepDelayMs: 150 }, env: { GPU_VRAM_BYTES: '8000000000' } });
    mkdirSync(ARTIFACTS, { recursive: true });
    profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
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
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('request', (r) => {
      const url = r.url();
      if (!/^(https?|wss?):\/\/127\.0\.0\.1[:/]/.test(url) && !/^(data|blob):/.test(url)) outside.push(url);
    });
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('response', (r) => r.status() >= 400 && consoleErrors.push(`${r.status()} ${r.url()}`));
    page.on('pageerror', (e) => consoleErrors.push(e.message));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('refuses a USER key with a clear message, then signs in with the admin key kept in sessionStorage only', { timeout: 60_000 }, async () => {
    // A browser asking for / lands on the console.
    await page.goto(`${gw.url}/`, { waitUntil: 'load' });
    expect(new URL(page.url()).pathname).toBe('/admin/');
    await expect(page.title()).resolves.toBe('LLM gateway admin');

    await page.getByLabel('API key').fill(gw.userSecret);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').innerText()).resolves.toContain('is a USER key. The admin console needs an ADMIN key.');
    expect(await page.getByRole('heading', { name: 'Keys' }).count()).toBe(0);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    await page.getByLabel('API key').fill(gw.adminSecret);
    await page.getByRole('button', { name: 'Sign in' }).click();
    for (const name of ['Keys', 'Models', 'Usage', 'Live']) await page.getByRole('heading', { name, exact: true }).waitFor({ timeout: 15_000 });
    const stored = await page.evaluate(() => Object.values(sessionStorage));
    expect(stored).toEqual([gw.adminSecret]);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(page.url()).not.toContain(gw.adminSecret);
    // A reload in the same tab stays signed in.
    await page.reload({ waitUntil: 'load' });
    await page.getByRole('heading', { name: 'Keys', exact: true }).waitFor({ timeout: 15_000 });
  });

  it('creates a key with credits and limits and shows its secret once, with a copy button', { timeout: 60_000 }, async () => {
    const form = page.getByRole('form', { name: 'New key' });
    await form.getByLabel('Name').fill('browser key');
    await form.getByLabel('Credits').fill('42');
    await form.getByLabel('Requests/min').fill('7');
    await page.getByRole('button', { name: 'Create key' }).click();
    const secretBox = page.getByRole('status', { name: 'New key secret' });
    const secret = (await secretBox.getByTestId('new-secret').innerText()).trim();
    expect(secret.length).toBeGreaterThan(20);
    await expect(secretBox.getByRole('button', { name: 'Copy' }).isVisible()).resolves.toBe(true);
    await page.locator('#keys').scrollIntoViewIfNeeded();
    await shot('keys');

    // The secret works, with the credits and limits given in the form.
    const me = await post<{ me: { name: string; credits: number; limits: { requestsPerMinute: number } } }>(gw, '{ me { name credits limits { requestsPerMinute } } }', undefined, secret);
    expect(me.body.data?.me).toEqual({ name: 'browser key', credits: 42, limits: { requestsPerMinute: 7 } });
    // The new key is listed; searching narrows the list to it.
    await page.getByLabel('Search keys').fill('browser');
    await until(async () => (await page.locator('#keys tbody tr').count()) === 1, 10_000, 'one key row after the search');
    await expect(page.locator('#keys tbody tr').first().innerText()).resolves.toContain('browser key');

    // Once dismissed, the secret is gone from the page for good.
    await secretBox.getByRole('button', { name: 'Done' }).click();
    await expect(page.content()).resolves.not.toContain(secret);
    expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([gw.adminSecret]);
  });

  it('adds credits, edits limits and revokes a key; the revoked filter shows it again', { timeout: 60_000 }, async () => {
    const { key } = await gw.app.services.keys.create({ name: 'managed key', role: 'USER', credits: 10 });
    await page.getByLabel('Search keys').fill('managed');
    const row = page.locator('#keys tbody tr', { hasText: 'managed key' });
    await row.waitFor({ timeout: 15_000 });
    await row.getByLabel('Credits to add to managed key').fill('25');
    await row.getByRole('button', { name: 'Add credits' }).click();
    await until(async () => (await gw.app.services.keys.findActive(key.id))?.credits === 35, 15_000, 'credits 10 + 25');
    await until(async () => (await row.innerText()).includes('35'), 15_000, 'the row to show 35 credits');

    await row.getByRole('button', { name: 'Edit limits' }).click();
    const limits = page.getByRole('form', { name: 'Limits of managed key' });
    await limits.getByLabel('Tokens/min').fill('5000');
    await limits.getByRole('button', { name: 'Save limits' }).click();
    await until(async () => (await gw.app.services.keys.findActive(key.id))?.tokensPerMinute === 5000, 15_000, 'tokensPerMinute 5000');

    page.once('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: 'Revoke' }).click();
    await until(async () => (await gw.app.services.keys.findActive(key.id)) === null, 15_000, 'the key revoked');
    await row.waitFor({ state: 'detached', timeout: 15_000 }); // hidden while revoked keys are filtered out
    await page.getByLabel('Show revoked').check();
    await until(async () => (await row.innerText()).includes('revoked'), 15_000, 'the revoked key listed');
    await page.getByLabel('Search keys').fill('');
  });

  it('edits a model\'s catalog entry and the gateway settings', { timeout: 60_000 }, async () => {
    const row = page.locator('#models tbody tr', { hasText: 'qwen3:0.6b' }).first();
    await row.getByRole('button', { name: 'Edit' }).click();
    const form = page.getByRole('form', { name: 'Catalog entry of qwen3:0.6b' });
    await form.getByLabel('Alias').fill('tiny');
    await form.getByLabel('Completion price /1k').fill('2.5');
    await form.getByLabel('Own threshold (s)').fill('120');
    await form.getByRole('button', { name: 'Save' }).click();
    await until(async () => (await row.innerText()).includes('alias tiny'), 15_000, 'the alias shown');
    const model = await post<{ model: { alias: string; completionPricePer1k: number; inactivityThresholdSeconds: number } }>(
      gw,
      '{ model(name: "tiny") { alias completionPricePer1k inactivityThresholdSeconds } }',
      undefined,
      gw.adminSecret,
    );
    expect(model.body.data?.model).toEqual({ alias: 'tiny', completionPricePer1k: 2.5, inactivityThresholdSeconds: 120 });

    await page.getByLabel('Default system prompt').fill('Answer in one sentence.');
    await page.getByRole('button', { name: 'Save prompt' }).click();
    await page.getByLabel('Global inactivity threshold (s)').fill('600');
    await page.getByRole('button', { name: 'Save threshold' }).click();
    await until(
      async () => {
        const { settings } = gw.app.services;
        return (await settings.getDefaultSystemPrompt()) === 'Answer in one sentence.' && (await settings.getInactivityThresholdSeconds()) === 600;
      },
      15_000,
      'the settings saved',
    );
  });

  it('lists the models, loads and unloads one with its VRAM on the bar, and pulls one with a live progress bar', { timeout: 90_000 }, async () => {
    const models = page.locator('#models');
    const llama = models.locator('tbody tr', { hasText: 'llama3.2:latest' }).first();
    await llama.waitFor({ timeout: 15_000 });
    const meter = models.getByRole('meter');
    await expect(meter.count()).resolves.toBe(1);
    await expect(meter.getAttribute('aria-valuemax')).resolves.toBe('8000000000');
    await expect(meter.getAttribute('aria-valuenow')).resolves.toBe('0');

    await llama.getByRole('button', { name: 'Load' }).click();
    await until(async () => (await llama.innerText()).includes('loaded ('), 15_000, 'llama3.2 shown as loaded');
    const [loaded] = gw.emulator.running();
    expect(loaded?.name).toBe('llama3.2:latest');
    // The bar shows what the loaded model takes (GPU_VRAM_BYTES minus the models loaded).
    await until(async () => Number(await meter.getAttribute('aria-valuenow')) === loaded!.sizeVram, 15_000, 'the VRAM bar to show the loaded model');
    await models.scrollIntoViewIfNeeded();
    await shot('models');
    await llama.getByRole('button', { name: 'Unload' }).click();
    await until(async () => (await llama.innerText()).includes('installed') && gw.emulator.running().length === 0, 15_000, 'llama3.2 unloaded');

    await page.getByLabel('Model to pull').fill('smollm2:135m');
    await page.getByRole('button', { name: 'Pull', exact: true }).click();
    const bar = page.getByRole('progressbar', { name: /Pull of smollm2:135m/ });
    // Watch the bar move: values seen while the download runs, up to 100 at success.
    const seen: number[] = [];
    let shotTaken = false;
    await until(
      async () => {
        if (!(await bar.count())) return false;
        const value = Number(await bar.getAttribute('value'));
        if (seen.at(-1) !== value) seen.push(value);
        if (!shotTaken && value > 0 && value < 100) {
          shotTaken = true;
          await bar.scrollIntoViewIfNeeded();
          await shot('pull');
        }
        return value === 100 && (await page.locator('.pull').innerText()).includes('success');
      },
      60_000,
      'the pull to reach 100 %',
      50,
    );
    expect(seen.some((v) => v > 0 && v < 100), JSON.stringify(seen)).toBe(true);
    expect(seen.at(-1)).toBe(100);
    // Once done the table shows the new model, installed.
    await models.locator('tbody tr', { hasText: 'smollm2:135m' }).first().waitFor({ timeout: 15_000 });
  });

  it('draws the usage chart from real requests', { timeout: 60_000 }, async () => {
    for (let i = 0; i < 3; i++) {
      const r = await post(gw, 'mutation { generate(input: { model: "llama3.2", prompt: "usage for the chart" }) { generationId } }', undefined, gw.userSecret);
      expect(r.body.errors).toBeUndefined();
    }
    await page.locator('#usage').getByRole('button', { name: 'Refresh' }).click();
    const chart = page.getByRole('img', { name: /Requests, tokens and credits per day/ });
    await chart.locator('canvas').waitFor({ timeout: 15_000 });
    // Today's requests bar is drawn: the plot holds pixels of the requests colour.
    const painted = await until(
      () =>
        chart.locator('canvas').evaluate((c: HTMLCanvasElement) => {
          const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
          let blue = 0;
          for (let i = 0; i < data.length; i += 4) if (data[i + 3]! > 0 && data[i + 2]! > 150 && data[i]! < 120) blue++;
          return blue > 50 ? blue : false;
        }),
      15_000,
      'the requests bars to be drawn',
      100,
    );
    expect(painted).toBeGreaterThan(50);
    const byModel = page.getByRole('figure', { name: 'By model (last 90 days)' });
    await expect(byModel.innerText()).resolves.toContain('llama3.2');
    await page.locator('#usage tbody tr', { hasText: 'COMPLETE' }).first().waitFor({ timeout: 15_000 });
    await page.locator('#usage').scrollIntoViewIfNeeded();
    await shot('usage');
  });

  it('shows a running generation live with its phase and tokens/s, and cancels it', { timeout: 60_000 }, async () => {
    gw.emulator.setTokenDelay(400);
    const user = wsClient(gw, gw.userSecret);
    try {
      const stream = collect<{ generate: { type: string; generationId: string } }>(
        user,
        'subscription { generate(input: { model: "llama3.2", prompt: "A slow answer for the live view" }) { type generationId } }',
      );
      const id = await until(() => stream.results.find((r) => r.data?.generate)?.data!.generate.generationId, 15_000, 'generationId');
      await page.locator('#live').scrollIntoViewIfNeeded();
      const row = page.locator(`#live tr[data-generation="${id}"]`);
      await row.waitFor({ timeout: 15_000 });
      // Wait until the row shows a measured speed (after the second batch of tokens).
      await until(async () => /\d+\.\d/.test((await row.locator('td').nth(5).innerText()).trim()), 15_000, 'tokens/s in the live row', 100);
      const cells = await row.locator('td').allInnerTexts();
      expect(cells[1]).toContain('test user');
      expect(cells[2]).toContain('llama3.2');
      expect(cells[3]).toBe('GENERATING');
      expect(Number(cells[4])).toBeGreaterThanOrEqual(2);
      await shot('live');

      await row.getByRole('button', { name: 'Cancel' }).click();
      const events = await stream.done;
      expect(events.at(-1)?.errors?.[0]?.extensions?.code).toBe('CANCELLED');
      expect(events.some((e) => e.data?.generate.type === 'DONE')).toBe(false);
      await row.waitFor({ state: 'detached', timeout: 15_000 });
      expect((await gw.orm.getRepository(Generation).findOneByOrFail({ id })).status).toBe('CANCELLED');
      await expect(page.locator('#live').getByRole('status').innerText()).resolves.toContain(`Cancelled ${id.slice(0, 8)}`);
    } finally {
      gw.emulator.setTokenDelay(0);
      await user.dispose();
    }
  });

  it('loaded everything from the gateway itself, without page errors', () => {
    expect(outside).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
