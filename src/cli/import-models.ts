// Imports a model catalog CSV (Ollama name, alias, description) into the configured database:
//   npm run import-models -- models.csv
// Uses DATABASE_URL / DB_PATH like the gateway and runs pending migrations first. Every row is
// checked before anything is written; on a bad row nothing is imported and the exit code is 1.
import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import { ConfigError, loadConfig } from '../config.js';
import { openDatabase } from '../services/database.js';
import { CatalogImportError, importCatalogCsv } from '../services/models/csv-import.js';

async function main(argv: string[]): Promise<number> {
  const file = argv[0];
  if (!file || argv.length > 1 || file === '--help' || file === '-h') {
    process.stderr.write('usage: npm run import-models -- <catalog.csv>\n  columns: Ollama name, alias, description (header row optional)\n');
    return 2;
  }
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    process.stderr.write(`cannot read ${file}: ${(e as Error).message}\n`);
    return 2;
  }
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dbPath: config.dbPath });
  try {
    const result = await importCatalogCsv(db, text);
    process.stdout.write(`imported ${result.models.length} models from ${file}: ${result.created} added, ${result.updated} updated\n`);
    return 0;
  } catch (e) {
    if (e instanceof CatalogImportError) {
      process.stderr.write(`${file}: nothing imported, ${e.errors.length} bad row${e.errors.length === 1 ? '' : 's'}:\n`);
      for (const err of e.errors) process.stderr.write(`  line ${err.line}: ${err.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    await db.destroy();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
