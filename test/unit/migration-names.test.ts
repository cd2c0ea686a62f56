import { describe, expect, it } from 'vitest';
import { migrations } from '../../src/migrations/all.js';
import { MIGRATION_NAMES } from '../../src/migrations/names.js';

// The gateway decides at start whether to load TypeORM by comparing MIGRATION_NAMES with the
// `migrations` table (services/db/migration-state.ts): a migration missing from the list would
// never run on an existing database.
describe('MIGRATION_NAMES', () => {
  // TypeORM's own reading (MigrationExecutor.getMigrations): the instance's `name`, else the class
  // name; its timestamp is the name's last 13 digits.
  const recorded = migrations.map((Migration) => {
    const instance = new Migration() as { name?: string };
    const name = instance.name ?? Migration.name;
    return { name, timestamp: Number.parseInt(name.slice(-13), 10) };
  });

  it('lists the classes of migrations/all.ts by name, in the same order', () => {
    expect([...MIGRATION_NAMES]).toEqual(recorded.map((m) => m.name));
  });

  it('is in timestamp order, each name ending in its class timestamp', () => {
    const timestamps = MIGRATION_NAMES.map((name) => Number.parseInt(name.slice(-13), 10));
    expect(timestamps).toEqual(recorded.map((m) => m.timestamp));
    for (const t of timestamps) expect(Number.isSafeInteger(t) && t > 1_700_000_000_000).toBe(true);
    expect(timestamps).toEqual([...timestamps].sort((a, b) => a - b));
    expect(new Set(timestamps).size).toBe(timestamps.length);
  });
});
