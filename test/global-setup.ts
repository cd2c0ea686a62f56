// Once per run, before any test file: builds the admin console (esbuild, well under a second) so
// tests serve the current admin/ sources from dist/admin, as `npm start` does after `npm run build`,
// and migrates the SQLite template that test databases are copied from (helpers/sqlite-template.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildAdmin } from '../scripts/build-admin.mjs';
import { openDatabase } from '../src/services/db/database.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await buildAdmin({ quiet: true });
  const dir = await mkdtemp(join(tmpdir(), 'gateway-template-'));
  const template = join(dir, 'template.sqlite');
  // Closing checkpoints the WAL into the file, so the file alone is the whole database.
  await (await openDatabase({ dbPath: template })).close();
  project.provide('sqliteTemplate', template);
  return () => rm(dir, { recursive: true, force: true });
}
