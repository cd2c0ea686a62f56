import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Command, Option } from 'commander';
import { CONVERSATION_COLUMNS, USAGE_COLUMNS, csvOf } from '../../services/access/usage-csv.js';
import { type TimeRange, USAGE_GROUPS, type UsageGroupBy, UsageService, timeRange } from '../../services/access/usage.js';
import { isGatewayError } from '../../services/platform/errors.js';
import { CliError, type CliIO, EXIT, Progress, isoDate, line, withDatabase } from '../io.js';

interface RangeOptions {
  from?: Date;
  to?: Date;
  output?: string;
  /** Cells exactly as stored, formula-like ones included (default: neutralised, see csvOf). */
  raw?: boolean;
}

function rangeOf(opts: RangeOptions): TimeRange {
  try {
    return timeRange(opts.from, opts.to);
  } catch (e) {
    if (isGatewayError(e)) throw new CliError(e.message, EXIT.USAGE);
    throw e;
  }
}

/**
 * Streams rows as CSV to stdout or to a file. A file is written next to its final name and
 * renamed at the end, so an interrupted export never leaves a truncated file behind.
 */
async function writeCsv<T>(io: CliIO, opts: RangeOptions, columns: Array<{ key: keyof T; header: string }>, rows: AsyncIterable<T>, what: string): Promise<number> {
  const { output } = opts;
  const progress = new Progress(io);
  let count = 0;
  const source = Readable.from(
    (async function* () {
      for await (const row of rows) {
        count++;
        if (output) progress.update(`${what}: ${count} rows written`);
        yield row;
      }
    })(),
  );
  if (!output) {
    await pipeline(source, csvOf(columns, { raw: opts.raw }), io.out as Writable, { end: false });
    return count;
  }
  const partial = `${output}.partial`;
  try {
    await pipeline(source, csvOf(columns, { raw: opts.raw }), createWriteStream(partial, { flags: 'wx' }));
    await rename(partial, output);
  } catch (e) {
    await rm(partial, { force: true });
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new CliError(`${partial} exists: another export may be running; remove it and retry.`);
    throw e;
  }
  progress.done(`${what}: ${count} rows written to ${output}`);
  return count;
}

const rangeOptions = (cmd: Command) =>
  cmd
    .option('--from <date>', 'first instant, inclusive (ISO-8601; default: the beginning)', isoDate('--from'))
    .option('--to <date>', 'end, exclusive (ISO-8601; default: now)', isoDate('--to'))
    .option('-o, --output <file>', 'write to this file (with progress on stderr) instead of stdout')
    .option('--raw', "cells exactly as stored; by default text starting with = + - @ TAB or CR gets a leading ' (spreadsheet formula injection)");

export function exportCommand(program: Command, io: CliIO): void {
  const exp = program.command('export').description('export the usage log as CSV (RFC 4180)');

  rangeOptions(
    exp
      .command('conversations')
      .description(
        'every generation in [from, to), oldest first: timestamp, key_name, key_prefix, model, kind, session_id, status, error_code, prompt, response, prompt_tokens, completion_tokens, credits_charged, generation_id',
      ),
  ).action(async (opts: RangeOptions) => {
    const range = rangeOf(opts);
    await withDatabase(io, async (db) => {
      await writeCsv(io, opts, CONVERSATION_COLUMNS, new UsageService(db).conversations(range), 'conversations');
    });
  });

  rangeOptions(
    exp
      .command('usage')
      .description('requests by outcome, tokens and credits in [from, to), one row per key, model or UTC day')
      .addOption(new Option('-g, --group-by <group>', 'one row per').choices(USAGE_GROUPS).default('KEY')),
  ).action(async (opts: RangeOptions & { groupBy: UsageGroupBy }) => {
    const range = rangeOf(opts);
    await withDatabase(io, async (db) => {
      const buckets = await new UsageService(db).aggregate(range, opts.groupBy);
      const n = await writeCsv(io, opts, USAGE_COLUMNS, Readable.from(buckets), 'usage');
      if (!opts.output) line(io.err, `${n} rows`);
    });
  });
}
