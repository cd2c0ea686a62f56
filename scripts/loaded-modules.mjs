// `node --import ./scripts/loaded-modules.mjs dist/main.js`: records every module the process loads
// (ES modules through a loader hook, CommonJS through require's cache) and, on SIGUSR2, writes them
// with their file sizes to LOADED_MODULES_FILE as JSON. Used by scripts/measure-idle-rss.mjs --modules.
import { statSync, writeFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { fileURLToPath } from 'node:url';
import { MessageChannel } from 'node:worker_threads';

const esm = new Set();
const { port1, port2 } = new MessageChannel();
port1.on('message', (url) => esm.add(url));
port1.unref();
const hooks = `data:text/javascript,${encodeURIComponent(`
let port;
export function initialize(data) { port = data.port; }
export async function load(url, context, next) { port.postMessage(url); return next(url, context); }
`)}`;
register(hooks, { data: { port: port2 }, transferList: [port2] });

const cache = createRequire(import.meta.url).cache;
process.on('SIGUSR2', () => {
  const paths = new Set(Object.keys(cache));
  for (const url of esm) if (url.startsWith('file:')) paths.add(fileURLToPath(url));
  const files = [...paths].map((path) => {
    try {
      return { path, bytes: statSync(path).size };
    } catch {
      return { path, bytes: 0 };
    }
  });
  writeFileSync(process.env.LOADED_MODULES_FILE ?? 'loaded-modules.json', JSON.stringify(files));
});
