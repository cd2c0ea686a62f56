// Summarises a .cpuprofile written by `node --cpu-prof` (for example by BENCH_PROFILE=1 npm run bench):
//   npx tsx bench/summarize-profile.ts <file.cpuprofile> [fromSec toSec]
// fromSec/toSec (seconds since the profile started) restrict it to part of the run.

import { readFileSync } from 'node:fs';
import { summarizeProfile } from './lib/profile.js';
import { fmt, table } from './lib/stats.js';

const [file, from, to] = process.argv.slice(2);
if (!file) {
  console.error('usage: tsx bench/summarize-profile.ts <file.cpuprofile> [fromSec toSec]');
  process.exit(2);
}
let window: { fromUs: number; toUs: number } | undefined;
if (from !== undefined) {
  const { startTime } = JSON.parse(readFileSync(file, 'utf8')) as { startTime: number };
  window = { fromUs: startTime + Number(from) * 1e6, toUs: to === undefined ? Infinity : startTime + Number(to) * 1e6 };
}
const s = summarizeProfile(file, window, 40);
console.log(`${file}: busy ${fmt(s.busyMs, 0)} ms of ${fmt(s.wallMs, 0)} ms sampled`);
console.log(table('Self time by component', ['component', 'self ms', 'of busy'], s.components.map((c) => [c.component, fmt(c.selfMs, 0), `${c.pctOfBusy.toFixed(1)} %`])));
console.log(table('Inclusive time of relay stages', ['stage', 'ms', 'of busy'], s.stages.map((c) => [c.stage, fmt(c.inclusiveMs, 0), `${c.pctOfBusy.toFixed(1)} %`])));
console.log(table('Top self-time functions', ['function', 'where', 'component', 'self ms', 'of busy'], s.topSelf.map((f) => [f.function, f.location, f.component, fmt(f.selfMs, 0), `${f.pctOfBusy.toFixed(1)} %`])));
