import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { ModelEntry } from '../../src/entities/model-entry.js';
import { openDatabase } from '../../src/services/db/database.js';
import { CatalogImportError, importCatalogCsv, parseCatalogCsv } from '../../src/services/models/csv-import.js';
import { type TestDatabase, createTestDatabase, describeEachDatabase } from '../helpers/database.js';

describe('parseCatalogCsv', () => {
  it('reads name, alias and description, skips a header and blank lines, and knows each row\'s line', () => {
    const text = 'Ollama name,alias,description\n\nLlama3.2, Fast ,"Small, quick"\nllava:7b,,"Reads\nimages"\nqwen3:0.6b\n';
    const { rows, errors } = parseCatalogCsv(text);
    expect(errors).toEqual([]);
    expect(rows).toEqual([
      { line: 3, name: 'llama3.2:latest', alias: 'fast', description: 'Small, quick' },
      { line: 4, name: 'llava:7b', alias: null, description: 'Reads\nimages' },
      { line: 6, name: 'qwen3:0.6b', alias: null, description: null },
    ]);
    expect(parseCatalogCsv('llama3.2,fast\r\nqwen3:0.6b,tiny\r\n').rows.map((r) => r.line)).toEqual([1, 2]);
  });

  it('reports every bad row by line number', () => {
    const text = [
      'name,alias,description', // 1
      'llama3.2,fast,ok', // 2
      'not a name,x,y', // 3
      'qwen3:0.6b,bad:alias,z', // 4
      'llama3.2:latest,other,dup', // 5
      'llava:7b,fast,dup alias', // 6
      'a,b,c,d', // 7
      ',alias,no name', // 8
    ].join('\n');
    expect(parseCatalogCsv(text).errors).toEqual([
      { line: 3, message: '"not a name" is not a valid Ollama model name' },
      { line: 4, message: expect.stringMatching(/^alias "bad:alias" is invalid/) },
      { line: 5, message: '"llama3.2:latest" already appears on line 2' },
      { line: 6, message: 'alias "fast" already appears on line 2' },
      { line: 7, message: 'expected 1 to 3 columns (Ollama name, alias, description), found 4' },
      { line: 8, message: 'the Ollama name is empty' },
    ]);
  });

  it('reports broken CSV and an empty file', () => {
    expect(parseCatalogCsv('llama3.2,fast\nqwen3:0.6b,"unclosed\n').errors).toEqual([{ line: expect.any(Number), message: expect.stringMatching(/^not valid CSV/) }]);
    expect(parseCatalogCsv('name,alias,description\n').errors).toEqual([{ line: 1, message: 'the file has no catalog rows' }]);
  });
});

describeEachDatabase('importCatalogCsv', (kind) => {
  let db: TestDatabase;
  afterEach(async () => {
    await db?.cleanup();
  });
  const entries = async () =>
    (await db.orm.getRepository(ModelEntry).find({ order: { name: 'ASC' } })).map(({ name, alias, description, enabled }) => ({ name, alias, description, enabled }));

  it('adds new entries and updates existing ones in one go', async () => {
    db = await createTestDatabase(kind);
    expect(await importCatalogCsv(db.database, 'llama3.2,fast,Quick\nllava:7b,eyes,Vision\n')).toEqual({ created: 2, updated: 0, models: ['llama3.2:latest', 'llava:7b'] });
    // Aliases may move between entries within one file.
    expect(await importCatalogCsv(db.database, 'llava:7b,fast,Now the fast one\nllama3.2,eyes,\nqwen3:0.6b,tiny,Tiny\n')).toEqual({
      created: 1,
      updated: 2,
      models: ['llava:7b', 'llama3.2:latest', 'qwen3:0.6b'],
    });
    expect(await entries()).toEqual([
      { name: 'llama3.2:latest', alias: 'eyes', description: null, enabled: true },
      { name: 'llava:7b', alias: 'fast', description: 'Now the fast one', enabled: true },
      { name: 'qwen3:0.6b', alias: 'tiny', description: 'Tiny', enabled: true },
    ]);
  });

  it('imports nothing when one row is bad, whether the file or the database is the reason', async () => {
    db = await createTestDatabase(kind);
    await importCatalogCsv(db.database, 'llama3.2,fast,Quick\n');
    const before = await entries();
    const bad = await importCatalogCsv(db.database, 'qwen3:0.6b,tiny\nllava:7b,??\n').catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(CatalogImportError);
    expect((bad as CatalogImportError).errors).toEqual([{ line: 2, message: expect.stringMatching(/alias "\?\?" is invalid/) }]);
    expect((bad as CatalogImportError).code).toBe('BAD_USER_INPUT');
    // "fast" belongs to llama3.2, which the file does not mention.
    const clash = await importCatalogCsv(db.database, 'qwen3:0.6b,tiny\nllava:7b,fast\n').catch((e: unknown) => e);
    expect((clash as CatalogImportError).errors).toEqual([{ line: 2, message: 'alias "fast" is already used by "llama3.2:latest"' }]);
    const shadow = await importCatalogCsv(db.database, 'qwen3:0.6b,llama3.2\n').catch((e: unknown) => e);
    expect((shadow as CatalogImportError).errors[0].message).toMatch(/hide/);
    expect(await entries()).toEqual(before);
  });
});

describe('llm-gateway models import into a database not yet created', () => {
  const dir = mkdtempSync(join(tmpdir(), 'import-cli-'));
  const dbPath = join(dir, 'gateway.sqlite');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const collector = () => {
    const chunks: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        chunks.push(String(chunk));
        done();
      },
    });
    return { stream, text: () => chunks.join('') };
  };
  const run = async (args: string[]) => {
    const out = collector();
    const err = collector();
    const code = await runCli(['models', 'import', ...args], { out: out.stream, err: err.stream, env: { ...process.env, LOG_LEVEL: 'silent', DB_PATH: dbPath, DATABASE_URL: '' } });
    return { code, stdout: out.text(), stderr: err.text() };
  };

  it('imports a file into the configured database (migrations run first), and reports bad rows by line without importing', async () => {
    const good = join(dir, 'good.csv');
    writeFileSync(good, 'Ollama name,alias,description\nllama3.2,fast,Quick\nqwen3:0.6b,tiny,Tiny\n');
    const ok = await run([good]);
    expect(ok.stderr).not.toMatch(/line/);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/imported 2 models .*2 added, 0 updated/);
    expect(ok.stdout.trim().split('\n')).toEqual(['llama3.2:latest', 'qwen3:0.6b']);

    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'llava:7b,eyes\nnot valid!,x\n');
    const failed = await run([bad]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/nothing imported/);
    expect(failed.stderr).toMatch(/line 2: "not valid!" is not a valid Ollama model name/);

    const database = await openDatabase({ dbPath });
    try {
      const ds = await database.orm();
      expect((await ds.getRepository(ModelEntry).find({ order: { name: 'ASC' } })).map((e) => e.alias)).toEqual(['fast', 'tiny']);
    } finally {
      await database.close();
    }
  }, 20_000);
});
