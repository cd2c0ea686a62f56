// The emulator's own HTTP surface under /__emulator/, for tests and demos in another process.
// Deliberately outside /api/ so it can never be mistaken for an Ollama route; not recorded.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { validateRule, type FaultBook } from './faults.js';
import type { Recorder } from './recorder.js';
import { normalizeModelName } from './models.js';
import { checkConfig, type EmulatorState } from './state.js';
import type { EmulatorConfig, FaultRule } from './types.js';
import { sendJson } from './wire.js';

export const CONTROL_PREFIX = '/__emulator/';

export interface Controls {
  faults: FaultBook;
  recorder: Recorder;
  state: EmulatorState;
}

function parse(raw: Buffer): unknown {
  try {
    return raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
  } catch {
    return undefined;
  }
}

export function handleControl(req: IncomingMessage, res: ServerResponse, path: string, raw: Buffer, c: Controls): void {
  const route = `${req.method} ${path}`;
  switch (route) {
    case 'POST /__emulator/faults': {
      const rule = parse(raw);
      const err = validateRule(rule);
      if (err) return sendJson(res, 400, { error: err });
      c.faults.add(rule as FaultRule);
      return sendJson(res, 200, { ok: true });
    }
    case 'DELETE /__emulator/faults':
      c.faults.clear();
      return sendJson(res, 200, { ok: true });
    case 'GET /__emulator/requests':
      return sendJson(res, 200, c.recorder.requests);
    case 'POST /__emulator/token-delay': {
      const ms = (parse(raw) as { ms?: unknown } | undefined)?.ms;
      if (typeof ms !== 'number' || !(ms >= 0)) return sendJson(res, 400, { error: 'ms must be a non-negative number' });
      c.state.tokenDelayMs = ms;
      return sendJson(res, 200, { ok: true, ms });
    }
    case 'GET /__emulator/running':
      return sendJson(res, 200, c.state.sched.running().map(({ model: _model, ...r }) => r));
    case 'GET /__emulator/config':
      return sendJson(res, 200, c.state.config());
    case 'POST /__emulator/config': {
      const body = parse(raw);
      const err = checkConfig(body);
      if (err) return sendJson(res, 400, { error: err });
      return sendJson(res, 200, c.state.configure(body as EmulatorConfig));
    }
    case 'GET /__emulator/queue': {
      const model = new URL(req.url ?? '/', 'http://emulator').searchParams.get('model');
      return sendJson(res, 200, { queued: c.state.sched.queued(model ? normalizeModelName(model) : undefined) });
    }
    default:
      return sendJson(res, 404, { error: `unknown emulator control route: ${route}` });
  }
}
