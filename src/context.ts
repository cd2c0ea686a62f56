import { randomUUID } from 'node:crypto';
import type { Principal } from './services/access/keys.js';
import type { Services } from './services/container.js';

/** Per-operation context shared by HTTP, SSE and websocket requests. */
export interface GatewayContext {
  /** The authenticated caller, or null. */
  principal: Principal | null;
  /** True when a key was presented and rejected (so the error can say so). */
  badCredentials: boolean;
  services: Services;
  requestId: string;
  /** Aborted when the HTTP request goes away; absent on websockets (iterator return() covers those). */
  signal?: AbortSignal;
  /** The client's address (per-address limits); see src/services/access/limits/client-ip.ts. */
  clientIp: string;
}

/** Extracts a presented API key from `x-api-key` or `Authorization: Bearer`. */
export function keyFromHeaders(headers: { get(name: string): string | null }): string | undefined {
  const direct = headers.get('x-api-key');
  if (direct) return direct.trim();
  const auth = headers.get('authorization');
  const match = auth?.match(/^Bearer\s+(.+)$/i);
  return match?.[1]?.trim();
}

/** Extracts a presented API key from graphql-ws `connectionParams`. */
export function keyFromConnectionParams(params: Readonly<Record<string, unknown>> | undefined): string | undefined {
  if (!params) return undefined;
  const lowered = Object.fromEntries(Object.entries(params).map(([k, v]) => [k.toLowerCase(), v]));
  const candidates = [lowered['x-api-key'], lowered['apikey'], lowered['api_key']];
  for (const c of candidates) if (typeof c === 'string' && c) return c.trim();
  const auth = lowered['authorization'];
  if (typeof auth === 'string') return auth.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
  // GraphiQL and some clients nest headers.
  const nested = lowered['headers'];
  return nested && typeof nested === 'object' ? keyFromConnectionParams(nested as Record<string, unknown>) : undefined;
}

/** Who is calling, as the transport (src/transport/yoga.ts, graphql-ws-server.ts) established it. */
export interface Caller {
  /** The authenticated caller, or null (only queries that need no key, e.g. `health`, then succeed). */
  principal: Principal | null;
  /** True when a key was presented and rejected (so the error can say so). */
  badCredentials?: boolean;
  /** The client's address. */
  clientIp: string;
  /** HTTP and SSE: aborted when the request goes away. Websockets have none (iterator return() covers those). */
  signal?: AbortSignal;
}

/** The per-operation context, built here only, for HTTP, SSE and websocket operations alike. */
export function requestScope(services: Services, caller: Caller): GatewayContext {
  const requestId = randomUUID();
  const { principal, clientIp, signal, badCredentials = false } = caller;
  // No per-operation child logger: yoga merges this object into its own context on every
  // operation, so even a lazy one would be made each time, and log lines name the request id.
  return { principal, badCredentials, services, requestId, signal, clientIp };
}
