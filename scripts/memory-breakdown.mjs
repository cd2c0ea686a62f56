// `node --import ./scripts/memory-breakdown.mjs dist/main.js`: on SIGUSR2, writes where the
// process's memory is (process.memoryUsage, V8's heap spaces and code statistics, in MiB) to
// MEMORY_BREAKDOWN_FILE as JSON. Used by scripts/measure-idle-rss.mjs --breakdown.
import { writeFileSync } from 'node:fs';
import v8 from 'node:v8';

const mib = (n) => Math.round((n / 2 ** 20) * 10) / 10;
process.on('SIGUSR2', () => {
  const usage = Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, mib(v)]));
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, { used: mib(s.space_used_size), resident: mib(s.physical_space_size) }]));
  const code = Object.fromEntries(Object.entries(v8.getHeapCodeStatistics()).map(([k, v]) => [k, mib(v)]));
  writeFileSync(process.env.MEMORY_BREAKDOWN_FILE ?? 'memory-breakdown.json', JSON.stringify({ usage, spaces, code }));
});
