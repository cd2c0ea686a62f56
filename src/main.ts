// The gateway's entry point (`npm start`, `node dist/main.js`). Its only static imports set V8's
// flags (how it sizes its young generation, and WebAssembly on the baseline compiler), before the
// rest of the gateway is even parsed: an ES module's static imports are all loaded and compiled
// before its first line runs, so the rest comes in by a dynamic import (src/start.ts).
import './services/platform/wasm-baseline.js';
import { releaseYoungGeneration } from './services/platform/young-generation.js';

try {
  const { main } = await import('./start.js');
  await main(releaseYoungGeneration);
} catch (err) {
  console.error(err);
  process.exit(1);
}
