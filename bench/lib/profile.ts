// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per component, and
// inclusive time of a few frames that mark the stages of the per-token path.

import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  file: string;
  /** Sampled wall time covered by the profile, ms. */
  wallMs: number;
  /** Time not idle (everything but "(idle)"), ms. */
  busyMs: number;
  topSelf: Array<{ function: string; location: string; component: string; selfMs: number; pctOfBusy: number }>;
  components: Array<{ component: string; selfMs: number; pctOfBusy: number }>;
  /** Inclusive time of frames that mark stages of the relay (a frame counted once per sample). */
  stages: Array<{ stage: string; inclusiveMs: number; pctOfBusy: number }>;
}

const COMPONENTS: Array<[RegExp, string]> = [
  [/\/node_modules\/@graphql-tools\/(executor|utils)\//, 'GraphQL execution (@graphql-tools/executor, per event)'],
  [/\/node_modules\/graphql\//, 'graphql-js (types, values, validation)'],
  [/\/node_modules\/@pothos\//, 'Pothos (field wrappers, auth scopes)'],
  [/\/node_modules\/(graphql-yoga|@graphql-yoga|@envelop|@whatwg-node|@graphql-tools|graphql-sse)\//, 'yoga / envelop / whatwg-node (hooks, promise helpers, SSE)'],
  [/\/node_modules\/graphql-ws\//, 'graphql-ws server'],
  [/\/node_modules\/ws\//, 'ws (framing, send)'],
  [/\/node_modules\/ollama\//, 'ollama client (NDJSON parse)'],
  [/node:internal\/deps\/undici|\/node_modules\/undici\//, 'undici (HTTP to Ollama)'],
  [/node:internal\/webstreams/, 'web streams (fetch body)'],
  [/\/node_modules\/(typeorm|better-sqlite3)\//, 'database (TypeORM + SQLite)'],
  [/\/node_modules\/(pino|sonic-boom|pino-std-serializers|fast-redact|thread-stream)\//, 'logging (pino)'],
  [/\/node_modules\/zod\//, 'zod'],
  [/\/node_modules\/rate-limiter-flexible\//, 'rate limiter'],
  [/\/dist\/services\/generation\//, 'gateway: generation service'],
  [/\/dist\/services\/ollama\//, 'gateway: upstream wrapper'],
  [/\/dist\/(resolvers|schema|plugins)\//, 'gateway: resolvers / schema / plugins'],
  [/\/dist\//, 'gateway: other'],
  [/\/node_modules\//, 'other dependencies'],
  [/node:(internal\/)?(net|stream|streams|_http|http|internal\/stream_base_commons|internal\/http)/, 'node net / http / streams'],
  [/node:internal\/(process\/task_queues|timers)|node:timers/, 'node timers / microtasks'],
  [/^node:/, 'node core (other)'],
];

function componentOf(f: CallFrame): string {
  if (f.functionName === '(garbage collector)') return 'GC';
  if (f.functionName === '(idle)') return 'idle';
  if (f.functionName === '(program)') return 'V8/native (unattributed)';
  if (f.functionName === '(root)') return 'root';
  const url = f.url.replace(/^file:\/\//, '');
  for (const [re, name] of COMPONENTS) if (re.test(url)) return name;
  if (!url) {
    if (/^(stringify|parse)$/.test(f.functionName)) return 'JSON (native)';
    if (/write|Writev|writeUtf8String|writeBuffer|writev/i.test(f.functionName)) return 'socket writes (native)';
    return 'V8 builtins / native';
  }
  return 'other';
}

/** Frames whose inclusive time marks a stage of the relay. */
const STAGES: Array<[string, (f: CallFrame) => boolean]> = [
  ['GraphQL execution of each event (@graphql-tools/executor executeImpl)', (f) => /\/(@graphql-tools\/executor|graphql)\/.*execution\/execute\.js/.test(f.url) && /^(executeImpl|executeOperation|executeFields)$/.test(f.functionName)],
  ['graphql-ws: emit next / send', (f) => /graphql-ws/.test(f.url) && /^(emit|next|send)$/.test(f.functionName)],
  ['ws: send (frame + socket write)', (f) => /\/node_modules\/ws\/lib\/(websocket|sender)\.js/.test(f.url) && /^(send|sendFrame|dispatch|doSend)$/.test(f.functionName)],
  ['JSON serialisation of each event (graphql-ws stringifyMessage, yoga SSE stringify)', (f) => /^(stringifyMessage|jsonStringifyResultWithoutInternals|stringify)$/.test(f.functionName) && (f.url === '' || /graphql-ws|graphql-yoga/.test(f.url))],
  ['JSON parse of Ollama chunks (ollama parseJSON)', (f) => f.functionName === 'parseJSON' && /\/node_modules\/ollama\//.test(f.url)],
  ['ollama client: parseJSON / stream iterator', (f) => /\/node_modules\/ollama\//.test(f.url)],
  ['gateway generation service (run / mapChunks / stream wrapper)', (f) => /\/dist\/services\/generation\/generation-service\.js/.test(f.url)],
  ['database (TypeORM + better-sqlite3)', (f) => /\/node_modules\/(typeorm|better-sqlite3)\//.test(f.url)],
  ['logging (pino)', (f) => /\/node_modules\/(pino|sonic-boom)\//.test(f.url)],
  ['envelop / yoga hooks and promise helpers', (f) => /\/node_modules\/(@envelop|graphql-yoga|@graphql-yoga|@whatwg-node\/promise-helpers)\//.test(f.url)],
  ['whatwg-node server (HTTP/SSE responses)', (f) => /\/node_modules\/@whatwg-node\/(server|node-fetch|fetch)\//.test(f.url)],
  ['GC', (f) => f.functionName === '(garbage collector)'],
];

/**
 * `window` (µs on the monotonic clock, the one process.hrtime and V8's profiler share on Linux)
 * limits the summary to the samples taken during the measurement, leaving out start-up and shutdown.
 */
export function summarizeProfile(file: string, window?: { fromUs: number; toUs: number }, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) byId.set(n.id, n);
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Sample i lasts until sample i+1 (timeDeltas[i+1]); the last one gets the mean interval.
  const { samples, timeDeltas } = profile;
  const mean = timeDeltas.length ? timeDeltas.reduce((a, b) => a + b, 0) / timeDeltas.length : 0;
  const self = new Map<number, number>();
  const stageUs = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    at += timeDeltas[i] ?? 0;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    const us = Math.max(0, i + 1 < timeDeltas.length ? timeDeltas[i + 1] : mean);
    const id = samples[i];
    self.set(id, (self.get(id) ?? 0) + us);
    totalUs += us;
    const leaf = byId.get(id)!;
    if (leaf.callFrame.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const hit = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      for (const [stage, match] of STAGES) if (!hit.has(stage) && match(f)) hit.add(stage);
    }
    for (const s of hit) stageUs.set(s, (stageUs.get(s) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number) => Number(((100 * us) / Math.max(1, busyUs)).toFixed(1));
  const ms = (us: number) => Number((us / 1000).toFixed(1));

  const perFunction = new Map<string, { function: string; location: string; component: string; us: number }>();
  const perComponent = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const component = componentOf(f);
    if (component === 'idle') continue;
    perComponent.set(component, (perComponent.get(component) ?? 0) + us);
    const short = f.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\//, 'dist/');
    const location = short ? `${short}:${f.lineNumber + 1}` : '(native)';
    const key = `${f.functionName}@${location}`;
    const entry = perFunction.get(key) ?? { function: f.functionName || '(anonymous)', location, component, us: 0 };
    entry.us += us;
    perFunction.set(key, entry);
  }
  return {
    file,
    wallMs: ms(totalUs),
    busyMs: ms(busyUs),
    topSelf: [...perFunction.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ function: e.function, location: e.location, component: e.component, selfMs: ms(e.us), pctOfBusy: pct(e.us) })),
    components: [...perComponent.entries()].sort((a, b) => b[1] - a[1]).map(([component, us]) => ({ component, selfMs: ms(us), pctOfBusy: pct(us) })),
    stages: STAGES.map(([stage]) => ({ stage, inclusiveMs: ms(stageUs.get(stage) ?? 0), pctOfBusy: pct(stageUs.get(stage) ?? 0) })),
  };
}
