import type { Client } from 'graphql-ws';
import { expect } from 'vitest';
import { type GraphQLResponse, type TestGateway, post } from './gateway.js';

/** Runs an operation over HTTP and returns `data`, failing the test on any error. */
export async function gql<T = Record<string, any>>(gw: TestGateway, query: string, variables?: Record<string, unknown>, secret = gw.adminSecret): Promise<T> {
  const { body } = await post<T>(gw, query, variables, secret);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data as T;
}

/** Runs an operation over HTTP and returns its first error (failing the test when there is none). */
export async function gqlError(gw: TestGateway, query: string, variables?: Record<string, unknown>, secret = gw.adminSecret) {
  const { status, body } = await post(gw, query, variables, secret);
  expect(body.errors?.length, `expected an error, got ${JSON.stringify(body.data)}`).toBeGreaterThan(0);
  return { status, error: body.errors![0], data: body.data };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface ModelEventPayload {
  type: string;
  reason: string;
  model: string;
  at: string;
  sizeBytes: number | null;
}

/**
 * Subscribes to modelEvents and resolves once the subscription is live: a query on the same
 * socket has round-tripped after the subscribe message, and the server-side listener exists.
 */
export async function subscribeModelEvents(client: Client): Promise<{ events: ModelEventPayload[]; errors: unknown[]; stop: () => void }> {
  const events: ModelEventPayload[] = [];
  const errors: unknown[] = [];
  const stop = client.subscribe<{ modelEvents: ModelEventPayload }>(
    { query: 'subscription { modelEvents { type reason model at sizeBytes } }' },
    {
      next: (r: GraphQLResponse<{ modelEvents: ModelEventPayload }>) => (r.data ? events.push(r.data.modelEvents) : errors.push(r.errors)),
      error: (e) => errors.push(e),
      complete: () => {},
    },
  );
  await new Promise<void>((resolve, reject) =>
    client.subscribe({ query: '{ settings { defaultModel } }' }, { next: () => {}, error: reject, complete: () => resolve() }),
  );
  await new Promise((r) => setTimeout(r, 50));
  return { events, errors, stop };
}

/** Requests the emulator received to load or unload (empty prompt) a model, with their keep_alive. */
export function residencyRequests(gw: TestGateway, model?: string) {
  return gw.emulator.requests
    .filter((r) => r.path === '/api/generate')
    .map((r) => ({ ...r, body: r.body as { model: string; prompt?: string; keep_alive?: unknown; options?: Record<string, unknown> } }))
    .filter((r) => (r.body.prompt ?? '') === '' && (model === undefined || r.body.model === model));
}
