import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Services } from '../services/container.js';
import { ErrorCode, isGatewayError } from '../services/platform/errors.js';
import { timeRange } from '../services/access/usage.js';
import { CONVERSATION_COLUMNS, csvOf } from '../services/access/usage-csv.js';
import type { AuthEdge } from '../transport/auth.js';
import { EXPORT_CONVERSATIONS_PATH } from './paths.js';

function refuse(res: ServerResponse, status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}, details: Record<string, unknown> = {}) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify({ errors: [{ message, extensions: { ...details, code } }] }));
}

function dateParam(params: URLSearchParams, name: string): Date | undefined {
  const raw = params.get(name);
  if (raw === null || raw === '') return undefined;
  return new Date(raw);
}

/**
 * `GET /export/conversations.csv?from=&to=` (admin key in `x-api-key` or `Authorization: Bearer`):
 * every generation in [from, to) as CSV, oldest first, streamed from the database in batches with
 * backpressure. Dates are ISO-8601; both bounds are optional. Cells that a spreadsheet would
 * run as a formula are neutralised (`'` prefix, OWASP); `?raw=true` exports them as stored.
 */
export async function exportConversations(req: IncomingMessage, res: ServerResponse, services: Services, edge: AuthEdge): Promise<void> {
  const started = Date.now();
  const requestId = randomUUID();
  const log = services.log.child({ requestId });
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return refuse(res, 405, ErrorCode.BAD_USER_INPUT, 'Use GET.');
  }
  // Through the edge: wrong keys count against the address, so an admin key cannot be guessed here.
  const auth = await edge.request(req);
  if (auth.kind === 'refused') return refuse(res, auth.status, auth.error.code, auth.error.message, auth.headers, auth.error.details);
  if (auth.kind === 'none') return refuse(res, 401, ErrorCode.UNAUTHENTICATED, 'A valid API key is required.');
  const { key } = auth;
  if (key.role !== 'ADMIN') {
    log.info({ key: key.prefix, route: EXPORT_CONVERSATIONS_PATH, outcome: 'forbidden' }, 'export refused');
    return refuse(res, 403, ErrorCode.FORBIDDEN, 'Only admin keys may export conversations.');
  }

  let range;
  const params = new URL(req.url ?? '/', 'http://gateway').searchParams;
  try {
    range = timeRange(dateParam(params, 'from'), dateParam(params, 'to'));
  } catch (e) {
    return refuse(res, 400, ErrorCode.BAD_USER_INPUT, isGatewayError(e) ? e.message : 'Invalid query.');
  }

  res.writeHead(200, {
    'content-type': 'text/csv; charset=utf-8',
    'content-disposition': 'attachment; filename="conversations.csv"',
    'cache-control': 'no-store',
  });
  if (req.method === 'HEAD') return void res.end();

  let rows = 0;
  const source = Readable.from(
    (async function* () {
      for await (const row of services.usage.conversations(range)) {
        rows++;
        yield row;
      }
    })(),
  );
  const csv = csvOf(CONVERSATION_COLUMNS, { raw: params.get('raw') === 'true' });
  try {
    await pipeline(source, csv, res);
    log.info({ key: key.prefix, route: EXPORT_CONVERSATIONS_PATH, outcome: 'ok', rows, durationMs: Date.now() - started }, 'conversations exported');
  } catch (err) {
    // Most often the client went away; the response is already destroyed by pipeline.
    log.warn({ err, key: key.prefix, route: EXPORT_CONVERSATIONS_PATH, outcome: 'aborted', rows, durationMs: Date.now() - started }, 'conversation export ended early');
  }
}
