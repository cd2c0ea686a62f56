import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Secrets never reach a log line: request headers that carry keys are
 * redacted, and callers log key prefixes, never keys or prompts at info level.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: {
        paths: ['apiKey', 'secret', 'headers.authorization', 'headers["x-api-key"]', 'connectionParams', '*.apiKey', '*.secret'],
        censor: '[redacted]',
      },
    },
    destination as pino.DestinationStream | undefined,
  );
}
