import { existsSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Command } from 'commander';
import { connectDatabase } from '../../services/db/database.js';
import { CliError, type CliIO, EXIT, Progress, configFrom, formatBytes, line } from '../io.js';

/** Pages copied per backup step: small steps let the gateway keep writing between them. */
const PAGES_PER_STEP = 256;

export function dbCommand(program: Command, io: CliIO): void {
  const db = program.command('db').description('the database: migrations and backups');

  db.command('migrate')
    .description('run pending migrations (the gateway also runs them at start)')
    .action(async () => {
      const config = configFrom(io);
      const database = await connectDatabase({ databaseUrl: config.databaseUrl, dbPath: config.dbPath });
      try {
        const ran = await database.migrate();
        for (const name of ran) line(io.out, `applied ${name}`);
        line(io.err, ran.length ? `${ran.length} migration${ran.length === 1 ? '' : 's'} applied.` : 'The database is up to date.');
      } finally {
        await database.close();
      }
    });

  db.command('backup')
    .description('copy the SQLite database to <file> while the gateway keeps running (SQLite online backup API)')
    .argument('<file>', 'where to write the copy')
    .option('-f, --force', 'overwrite <file> if it exists')
    .action(async (file: string, opts: { force?: boolean }) => {
      const config = configFrom(io);
      if (config.databaseUrl) throw new CliError('DATABASE_URL points at PostgreSQL: back it up with pg_dump. `db backup` copies the SQLite file at DB_PATH.', EXIT.USAGE);
      if (!existsSync(config.dbPath)) throw new CliError(`No SQLite database at ${config.dbPath} (DB_PATH).`);
      const target = path.resolve(file);
      if (target === path.resolve(config.dbPath)) throw new CliError('The backup file must not be the database itself.', EXIT.USAGE);
      if (existsSync(target) && !opts.force) throw new CliError(`${file} exists; pass --force to overwrite it.`);
      await mkdir(path.dirname(target), { recursive: true });

      // A second connection to the live file: the backup API copies a consistent snapshot (WAL
      // included) in steps, and restarts by itself when the gateway writes in between.
      const source = new Database(config.dbPath, { fileMustExist: true, timeout: 5000 });
      const partial = `${target}.partial`;
      const progress = new Progress(io, 250);
      const started = Date.now();
      try {
        await rm(partial, { force: true });
        const result = await source.backup(partial, {
          progress: ({ totalPages, remainingPages }) => {
            const done = totalPages - remainingPages;
            progress.update(`backup: ${done}/${totalPages} pages (${totalPages ? Math.floor((done / totalPages) * 100) : 100}%)`);
            return PAGES_PER_STEP;
          },
        });
        const check = new Database(partial, { readonly: true, fileMustExist: true });
        try {
          const integrity = check.pragma('integrity_check', { simple: true });
          if (integrity !== 'ok') throw new CliError(`The copy failed its integrity check: ${String(integrity)}`);
        } finally {
          check.close();
        }
        await rename(partial, target);
        progress.done(`backup: ${result.totalPages} pages (${formatBytes(statSync(target).size)}) written to ${file} in ${Date.now() - started} ms; integrity check ok`);
      } catch (e) {
        await rm(partial, { force: true });
        throw e;
      } finally {
        source.close();
      }
    });
}
