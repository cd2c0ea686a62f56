// One migrated SQLite file per test run (made in test/global-setup.ts); each test's database starts
// as a copy of it instead of running every migration again (a few hundred ms per database on a busy
// machine). test/database/migrations.test.ts still migrates empty databases itself.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of the migrated, empty SQLite template. */
    sqliteTemplate: string;
  }
}

/** Writes a migrated, empty SQLite database at `file`, as `openDatabase` on a new file would leave it. */
export function copyMigratedSqlite(file: string): void {
  mkdirSync(dirname(file), { recursive: true });
  copyFileSync(inject('sqliteTemplate'), file);
}
