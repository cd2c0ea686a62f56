import { Writable } from 'node:stream';
import { type Logger, createLogger } from '../../src/services/platform/logger.js';

/** A real pino logger whose JSON lines are kept in memory, to assert on what the gateway logs. */
export function captureLog(level = 'info'): { log: Logger; lines: () => Array<Record<string, unknown>>; text: () => string } {
  let raw = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw += chunk.toString('utf8');
      done();
    },
  });
  return {
    log: createLogger(level, sink),
    text: () => raw,
    lines: () =>
      raw
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
