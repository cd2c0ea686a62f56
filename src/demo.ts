// `npm run demo`: the gateway in front of the bundled Ollama emulator, for trying it without a GPU.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { loadConfig } from './config.js';
import { startEmulator } from './emulator/server.js';
import { buildApp } from './server.js';
import { createLogger } from './services/platform/logger.js';

async function demo(): Promise<void> {
  const emulator = await startEmulator({ tokenDelayMs: Number(process.env.EMULATOR_TOKEN_DELAY_MS ?? 40) });
  const config = loadConfig({
    DB_PATH: './data/demo.sqlite',
    LOG_LEVEL: 'warn',
    ...process.env,
    OLLAMA_HOST: emulator.url,
  });
  const app = await buildApp({ config, log: createLogger(config.logLevel) });
  const url = await app.start();
  const admin = app.bootstrapSecret ?? (await app.services.keys.create({ name: 'demo admin', role: 'ADMIN' })).secret;

  console.log(`Ollama emulator: ${emulator.url}`);
  console.log(`Gateway:         ${url}/graphql  (open it in a browser for GraphiQL)`);
  console.log(`Admin API key:   ${admin}   (demo database: ${config.dbPath})\n`);
  console.log('Streaming a sample answer over graphql-ws:\n');

  const client = createClient({ url: `${url.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { 'x-api-key': admin } });
  const query = `subscription Demo($input: GenerateInput!) {
    generate(input: $input) { type phase queuePosition delta usage { promptTokens completionTokens } creditsCharged }
  }`;
  type Event = { type: 'PHASE' | 'TOKEN' | 'DONE'; phase?: string; queuePosition?: number | null; delta?: string; usage?: unknown; creditsCharged?: number };
  for await (const result of client.iterate({ query, variables: { input: { model: 'llama3.2', prompt: 'Say hello to the demo.' } } })) {
    const event = (result.data as { generate?: Event } | null)?.generate;
    if (result.errors) console.error(result.errors);
    else if (event?.type === 'PHASE') console.log(`[${event.phase}${event.queuePosition ? ` #${event.queuePosition}` : ''}]`);
    else if (event?.type === 'TOKEN') process.stdout.write(event.delta ?? '');
    else if (event?.type === 'DONE') console.log(`\n\nDONE: usage ${JSON.stringify(event.usage)}, credits charged ${event.creditsCharged}`);
  }
  await client.dispose();

  console.log('\nTry it yourself:');
  console.log(`  curl -s ${url}/graphql -H 'content-type: application/json' -H 'x-api-key: ${admin}' \\`);
  console.log(`    -d '{"query":"mutation { generate(input: {model: \\"llama3.2\\", prompt: \\"Hi\\"}) { text usage { totalTokens } } }"}'`);
  console.log('\nCtrl-C to stop.');

  const stop = async () => {
    await app.stop();
    await emulator.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

demo().catch((err) => {
  console.error(err);
  process.exit(1);
});
