// The emulator's own HTTP surface under /__emulator/, for tests and demos in another process.
// Deliberately outside /api/ so it can never be mistaken for an Ollama route; not recorded.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { validateRule, type FaultBook } from './faults.js';
import type { Recorder } from './recorder.js';
import type { EmulatorState } from './state.js';
import type { FaultRule } from './types.js';
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
      return sendJson(
        res,
        200,
        c.state.runtime.running().map(({ name, expiresAt, sizeVram, contextLength }) => ({ name, expiresAt, sizeVram, contextLength })),
      );
    default:
      return sendJson(res, 404, { error: `unknown emulator control route: ${route}` });
  }
}
