import { Command, CommanderError } from 'commander';
import { GatewayError } from '../services/platform/errors.js';
import { VERSION } from '../version.js';
import { dbCommand } from './commands/db.js';
import { exportCommand } from './commands/export.js';
import { creditsCommand, keysCommand } from './commands/keys.js';
import { modelsCommand } from './commands/models.js';
import { CliError, type CliIO, EXIT, line } from './io.js';

const ENVIRONMENT_HELP = `
Environment (the same as the gateway's):
  DB_PATH       SQLite file (default ./data/gateway.sqlite)
  DATABASE_URL  PostgreSQL connection string; used instead of DB_PATH when set

Exit codes: 0 done, 1 the operation failed, 2 bad usage or configuration.

Examples:
  llm-gateway keys create --name "mobile app" --credits 1000
  llm-gateway keys list --all
  llm-gateway credits add llmgw_AbCdEfGh 500
  llm-gateway models import catalog.csv
  llm-gateway export conversations --from 2026-01-01 --to 2026-02-01 -o january.csv
  llm-gateway db backup /backups/gateway-$(date +%F).sqlite`;

export function buildProgram(io: CliIO): Command {
  const program = new Command()
    .name('llm-gateway')
    .description('Operate an LLM GraphQL gateway: API keys, credits, model catalog, exports, migrations and backups.')
    .version(VERSION)
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ writeOut: (s) => void io.out.write(s), writeErr: (s) => void io.err.write(s) })
    .addHelpText('after', ENVIRONMENT_HELP)
    .exitOverride();
  keysCommand(program, io);
  creditsCommand(program, io);
  modelsCommand(program, io);
  exportCommand(program, io);
  dbCommand(program, io);
  for (const cmd of program.commands) {
    cmd.exitOverride();
    for (const sub of cmd.commands) sub.exitOverride();
  }
  return program;
}

/** Runs the CLI and returns its exit code; never throws. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const program = buildProgram(io);
  if (argv.length === 0) {
    program.outputHelp();
    return EXIT.USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are printed by commander and exit 0; anything else is a usage error it already reported.
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (e instanceof CliError) {
      line(io.err, `error: ${e.message}`);
      return e.exitCode;
    }
    if (e instanceof GatewayError) {
      line(io.err, `error: ${e.message}`);
      return EXIT.FAILED;
    }
    line(io.err, `error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return EXIT.FAILED;
  }
}
