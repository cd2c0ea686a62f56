// The in-process tier: the real app (schema, resolvers, services, database, emulator) driven through
// `yoga.fetch` with no port and no sockets, for schema and resolver behaviour. The HTTP edge's own
// checks (refusals before yoga, body limits, websockets) stay with the tests that boot the server.
import type { GraphQLResponse, TestApp, TestAppOptions } from './gateway.js';
import { buildTestApp } from './gateway.js';

export interface InProcessGateway extends TestApp {
  /** POSTs an operation to yoga in-process, with `secret` as `x-api-key`. */
  graphql<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>, secret?: string): Promise<{ status: number; body: GraphQLResponse<T> }>;
}

export async function startInProcess(options: TestAppOptions = {}): Promise<InProcessGateway> {
  const built = await buildTestApp(options);
  return {
    ...built,
    async graphql<T>(query: string, variables?: Record<string, unknown>, secret?: string) {
      const res = await built.app.yoga.fetch('http://gateway/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...(secret ? { 'x-api-key': secret } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, body: (await res.json()) as GraphQLResponse<T> };
    },
  };
}
