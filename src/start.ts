import { ConfigError, loadConfig } from './config.js';
import { buildApp } from './server.js';
import { createLogger } from './services/platform/logger.js';

/** Loads the configuration, builds and starts the gateway, and stops it on SIGTERM/SIGINT. */
export async function main(releaseYoungGeneration: () => void): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
  const log = createLogger(config.logLevel);
  const app = await buildApp({ config, log });
  if (app.bootstrapSecret) {
    // Printed once to the terminal, never to the log: it is the only copy of the secret.
    process.stdout.write(
      `\nNo API key existed, so an admin key was created. Store it now; it will not be shown again:\n\n  ${app.bootstrapSecret}\n\n`,
    );
  }
  const url = await app.start();
  releaseYoungGeneration();
  log.info({ url: `${url}/graphql`, ollama: config.ollamaHosts }, 'gateway listening');

  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) process.exit(1); // a second Ctrl-C stops at once
    log.info({ signal }, 'stopping');
    app.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

