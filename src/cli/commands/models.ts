import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { CatalogImportError, importCatalogCsv, parseCatalogCsv } from '../../services/models/csv-import.js';
import { CliError, type CliIO, EXIT, Progress, formatBytes, line, withDatabase } from '../io.js';

export function modelsCommand(program: Command, io: CliIO): void {
  const models = program.command('models').description('the model catalog');
  models
    .command('import')
    .description(
      'import a model catalog CSV (columns: Ollama name, alias, description; header row optional). ' +
        'Every row is checked first; on any bad row nothing is imported and the exit code is 1.',
    )
    .argument('<file>', 'the CSV file')
    .action(async (file: string) => {
      const progress = new Progress(io);
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        throw new CliError(`Cannot read ${file}: ${(e as Error).message}`, EXIT.USAGE);
      }
      progress.update(`read ${file} (${formatBytes(Buffer.byteLength(text))})`, true);
      const { rows, errors } = parseCatalogCsv(text);
      progress.update(`checked ${rows.length + errors.length} rows: ${errors.length} bad`, true);
      const report = (e: CatalogImportError) =>
        new CliError(`${file}: nothing imported, ${e.errors.length} bad row${e.errors.length === 1 ? '' : 's'}:\n${e.errors.map((r) => `  line ${r.line}: ${r.message}`).join('\n')}`);
      if (errors.length) throw report(new CatalogImportError(errors));
      await withDatabase(io, async (db) => {
        progress.update(`importing ${rows.length} models in one transaction...`, true);
        try {
          const result = await importCatalogCsv(db, text);
          progress.done(`imported ${result.models.length} models from ${file}: ${result.created} added, ${result.updated} updated`);
          line(io.out, result.models.join('\n'));
        } catch (e) {
          if (e instanceof CatalogImportError) throw report(e);
          throw e;
        }
      });
    });
}
