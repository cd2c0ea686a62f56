// The Ollama emulator: a real node:http server speaking Ollama's wire protocol (see
// /work/shared/ollama-api.md), with fault injection, a request log and stop/start to simulate
// Ollama going down and coming back on the same port.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { remove, ps, root, show, tags, version } from './catalog.js';
import { CONTROL_PREFIX, handleControl } from './control.js';
import { applySingleReplyFault, type Exchange } from './exchange.js';
import { FaultBook, defaultStatusMessage } from './faults.js';
import { embed, embeddings } from './embed.js';
import { chat, generate } from './inference.js';
import { defaultModels, defaultRegistry, normalizeModelName } from './models.js';
import { pull } from './pull.js';
import { Recorder } from './recorder.js';
import { EmulatorState, checkConfig, withDefaults } from './state.js';
import type { Emulator, EmulatorOptions, RecordedRequest } from './types.js';
import { sendError, sendText } from './wire.js';

export type { EmulatedModel, Emulator, EmulatorConfig, EmulatorOptions, Fault, FaultRule, RecordedRequest, RunningModel } from './types.js';
export { defaultModels, defaultRegistry, normalizeModelName } from './models.js';

type Handler = (ex: Exchange) => void | Promise<void>;
interface Route {
  methods: Record<string, Handler>;
  /** Handlers that stream apply mid-stream faults themselves. */
  streams?: boolean;
}

/** Ollama's gin routes that the emulator implements. */
const ROUTES: Record<string, Route> = {
  '/': { methods: { GET: root, HEAD: root } },
  '/api/version': { methods: { GET: version, HEAD: version } },
  '/api/tags': { methods: { GET: tags, HEAD: tags } },
  '/api/ps': { methods: { GET: ps } },
  '/api/show': { methods: { POST: show } },
  '/api/delete': { methods: { DELETE: remove } },
  '/api/generate': { methods: { POST: generate }, streams: true },
  '/api/chat': { methods: { POST: chat }, streams: true },
  '/api/pull': { methods: { POST: pull }, streams: true },
  '/api/embed': { methods: { POST: embed } },
  '/api/embeddings': { methods: { POST: embeddings } },
};

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(undefined));
    req.on('close', () => resolve(req.complete ? Buffer.concat(chunks) : undefined));
  });
}

function looseJson(raw: Buffer): unknown {
  try {
    return raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
  } catch {
    return undefined;
  }
}

/** The model a request is about, as sent (generate/chat/show use `model`, pull/delete also `name`). */
function modelOf(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const { model, name } = body as { model?: unknown; name?: unknown };
  if (typeof model === 'string' && model !== '') return model;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const host = opts.host ?? '127.0.0.1';
  const config = withDefaults({ ...opts, pullVerifyMs: opts.pullVerifyMs ?? opts.pullStepDelayMs });
  const configError = checkConfig(config);
  if (configError) throw new TypeError(`emulator: ${configError}`);
  const state = new EmulatorState({
    models: opts.models ?? defaultModels(),
    registry: opts.registry ?? defaultRegistry(),
    config,
    pullStepDelayMs: opts.pullStepDelayMs ?? 5,
    version: opts.version ?? '0.12.6',
  });
  const faults = new FaultBook();
  const recorder = new Recorder();
  let port = opts.port ?? 0;
  let server: Server | undefined;
  let closed = false;
  const sockets = new Set<Socket>();
  /** Requests in flight, so stop() can record them as ended by the server. */
  const inflight = new Set<Exchange>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://emulator').pathname;
    if (path.startsWith(CONTROL_PREFIX)) {
      const raw = await readBody(req);
      if (raw) handleControl(req, res, path, raw, { faults, recorder, state });
      return;
    }

    const record = recorder.open(req.method ?? 'GET', path);
    const aborter = new AbortController();
    const ex: Exchange = {
      req, res, path, raw: Buffer.alloc(0), record, state,
      signal: aborter.signal, failed: false, serverClosed: false,
      scheduled: () => recorder.scheduled(record),
    };
    inflight.add(ex);
    res.on('finish', () => recorder.end(record, res.statusCode >= 400 || ex.failed ? 'error' : 'completed'));
    res.on('close', () => {
      inflight.delete(ex);
      aborter.abort(); // stop any producer at once
      if (!res.writableFinished) recorder.end(record, ex.serverClosed ? 'error' : 'client-closed');
    });

    const raw = await readBody(req);
    if (!raw) return; // client went away while sending the body
    ex.raw = raw;
    recorder.setBody(record, looseJson(raw));

    const fault = faults.take(path, modelOf(record.body));
    if (fault?.kind === 'refuse') {
      recorder.end(record, 'refused');
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'status') {
      return sendError(res, fault.status, fault.error ?? defaultStatusMessage(fault.status, modelOf(record.body)));
    }

    const route = ROUTES[path];
    if (!route) return sendText(res, 404, '404 page not found', 'text/plain');
    const handler = route.methods[req.method ?? ''];
    if (!handler) return sendText(res, 405, '405 method not allowed', 'text/plain');
    if (fault) {
      ex.fault = fault;
      if (!route.streams && (await applySingleReplyFault(ex, state.tokenDelayMs))) return;
    }
    await handler(ex);
  }

  function listen(): Promise<void> {
    const srv = createServer((req, res) => {
      handle(req, res).catch((err: unknown) => {
        // A bug in a handler must still produce an Ollama-shaped answer, not a hung request.
        if (!res.headersSent) sendError(res, 500, err instanceof Error ? err.message : String(err));
        else res.destroy();
      });
    });
    srv.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, host, () => {
        srv.off('error', reject);
        port = (srv.address() as { port: number }).port;
        server = srv;
        resolve();
      });
    });
  }

  async function stop(): Promise<void> {
    const srv = server;
    if (!srv) return;
    server = undefined;
    for (const ex of inflight) ex.serverClosed = true;
    const done = new Promise<void>((resolve) => srv.close(() => resolve()));
    for (const s of sockets) s.destroy();
    sockets.clear();
    await done;
  }

  await listen();
  const formatHost = host.includes(':') ? `[${host}]` : host;

  return {
    get url() {
      return `http://${formatHost}:${port}`;
    },
    get port() {
      return port;
    },
    requests: recorder.requests,
    addFault: (rule) => faults.add(rule),
    clearFaults: () => faults.clear(),
    setTokenDelay: (ms) => {
      state.tokenDelayMs = ms;
    },
    configure: (c) => state.configure(c),
    running: () => state.sched.running().map(({ model: _model, ...r }) => r),
    queued: (model) => state.sched.queued(model === undefined ? undefined : normalizeModelName(model)),
    waitForRequest: (pred, timeoutMs = 5000) => recorder.waitFor(pred, timeoutMs, 'a matching request'),
    waitForOutcome: (id, outcome: RecordedRequest['outcome'], timeoutMs = 5000) =>
      recorder.waitFor((r) => r.id === id && r.outcome === outcome, timeoutMs, `request ${id} to be '${outcome}'`),
    stop,
    async start() {
      if (closed) throw new Error('emulator: start() after close()');
      if (!server) await listen();
    },
    async close() {
      closed = true;
      await stop();
    },
  };
}
