import { afterEach, expect, it } from 'vitest';
import { ModelCatalog } from '../../src/services/models/catalog.js';
import { SettingsService } from '../../src/services/platform/settings.js';
import { type TestDatabase, createTestDatabase, describeEachDatabase } from '../helpers/database.js';

describeEachDatabase('model catalog and settings', (kind) => {
  let db: TestDatabase;
  afterEach(async () => {
    await db?.cleanup();
  });

  it('registers, finds by alias or name, updates, and keeps exactly one default', async () => {
    db = await createTestDatabase(kind);
    const catalog = new ModelCatalog(db.database);
    await catalog.register({ name: 'Llama3.2', alias: 'Fast', isDefault: true, promptPricePer1k: 1.5 });
    await catalog.register({ name: 'qwen3:0.6b', alias: 'tiny' });
    expect((await catalog.find('FAST'))).toMatchObject({ via: 'alias', entry: { name: 'llama3.2:latest', promptPricePer1k: 1.5 } });
    expect((await catalog.find('llama3.2'))).toMatchObject({ via: 'name', entry: { alias: 'fast' } });
    expect(await catalog.find('unknown')).toBeNull();

    await catalog.update('tiny', { isDefault: true, description: 'Tiny one', completionPricePer1k: 0.25 });
    const entries = await catalog.list();
    expect(entries.filter((e) => e.isDefault).map((e) => e.name)).toEqual(['qwen3:0.6b']);
    expect(entries.find((e) => e.name === 'qwen3:0.6b')).toMatchObject({ description: 'Tiny one', completionPricePer1k: 0.25 });

    await catalog.setDefault('llava:7b');
    expect((await catalog.defaultEntry())?.name).toBe('llava:7b');
    expect((await catalog.list()).filter((e) => e.isDefault)).toHaveLength(1);

    await expect(catalog.register({ name: 'llava:7b', alias: 'tiny' })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(catalog.update('llava:7b', { alias: 'fast' })).rejects.toThrow(/already used/);
    await expect(catalog.update('nothing:1b', { alias: 'x' })).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });

    const withThreshold = await catalog.setThreshold('tiny', 90);
    expect(withThreshold.inactivityThresholdSeconds).toBe(90);
    expect((await catalog.setThreshold('tiny', null)).inactivityThresholdSeconds).toBeNull();
    await expect(catalog.setThreshold('tiny', 0)).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });

  it('stores settings; a stored null means cleared, no row means the configured default', async () => {
    db = await createTestDatabase(kind);
    const settings = new SettingsService(db.database, { inactivityThresholdSeconds: 300 });
    expect(await settings.getInactivityThresholdSeconds()).toBe(300);
    expect(await settings.getDefaultSystemPrompt()).toBeNull();
    await settings.setInactivityThresholdSeconds(42);
    await settings.setDefaultSystemPrompt('Be brief.');
    const again = new SettingsService(db.database, { inactivityThresholdSeconds: 300 });
    expect(await again.getInactivityThresholdSeconds()).toBe(42);
    expect(await again.getDefaultSystemPrompt()).toBe('Be brief.');
    await again.setInactivityThresholdSeconds(null);
    expect(await settings.getInactivityThresholdSeconds()).toBeNull();
    await settings.write('idle_reaper_last_activity', { 'llama3.2:latest': '2025-01-01T00:00:00.000Z' });
    expect((await settings.read('idle_reaper_last_activity')).value).toEqual({ 'llama3.2:latest': '2025-01-01T00:00:00.000Z' });
    // 0 in the environment means no threshold.
    expect(await new SettingsService(db.database, { inactivityThresholdSeconds: 0 }).read('x')).toEqual({ found: false, value: null });
  });
});
