// The console's one GraphQL client: queries and mutations over HTTP, subscriptions over
// graphql-ws, both on the gateway's own /graphql. The key goes in a header / connection_init,
// never in a URL.
import { Client, fetchExchange, subscriptionExchange, type AnyVariables, type CombinedError } from '@urql/core';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

const KEY_STORAGE = 'llm-gateway-admin-key';

export const storedKey = (): string | null => sessionStorage.getItem(KEY_STORAGE);
export const storeKey = (key: string): void => sessionStorage.setItem(KEY_STORAGE, key);
export const forgetKey = (): void => sessionStorage.removeItem(KEY_STORAGE);

export interface Gateway {
  client: Client;
  ws: WsClient;
  dispose(): void;
}

export function connect(key: string): Gateway {
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
  const ws = createWsClient({ url: wsUrl, connectionParams: { 'x-api-key': key }, lazy: true, retryAttempts: 5 });
  const client = new Client({
    url: '/graphql',
    preferGetMethod: false,
    requestPolicy: 'network-only',
    fetchOptions: () => ({ headers: { 'x-api-key': key } }),
    exchanges: [
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ],
  });
  return { client, ws, dispose: () => void ws.dispose() };
}

/** "CODE: message" of the first GraphQL error (or the network error). */
export function describeError(error: CombinedError | undefined | null): string | null {
  if (!error) return null;
  const first = error.graphQLErrors[0];
  if (first) return `${String(first.extensions?.code ?? 'ERROR')}: ${first.message}`;
  return error.networkError?.message ?? error.message;
}

export interface QueryState<T> {
  data: T | undefined;
  error: string | null;
  loading: boolean;
  refetch(): void;
}

/** Runs a query now and on refetch (and every `pollMs` when given). */
export function useQuery<T>(gw: Gateway, query: string, variables: AnyVariables = {}, pollMs?: number): QueryState<T> {
  const [state, setState] = useState<{ data?: T; error: string | null; loading: boolean }>({ error: null, loading: true });
  const [tick, setTick] = useState(0);
  const vars = JSON.stringify(variables);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    gw.client
      .query<T>(query, JSON.parse(vars) as AnyVariables)
      .toPromise()
      .then((r) => live && setState({ data: r.data ?? undefined, error: describeError(r.error), loading: false }));
    const timer = pollMs ? setTimeout(() => setTick((t) => t + 1), pollMs) : undefined;
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [gw, query, vars, tick, pollMs]);
  return { ...state, data: state.data, refetch: useCallback(() => setTick((t) => t + 1), []) };
}

/** Runs a mutation; resolves to its data, or throws an Error with "CODE: message". */
export async function mutate<T>(gw: Gateway, query: string, variables: AnyVariables): Promise<T> {
  const r = await gw.client.mutation<T>(query, variables).toPromise();
  const error = describeError(r.error);
  if (error) throw new Error(error);
  return r.data as T;
}

/** Follows a subscription while mounted (and `enabled`); each result goes to `onData`. */
export function useSubscription<T>(gw: Gateway, query: string, variables: AnyVariables, onData: (data: T) => void, enabled = true): string | null {
  const [error, setError] = useState<string | null>(null);
  const handler = useRef(onData);
  handler.current = onData;
  const vars = JSON.stringify(variables);
  useEffect(() => {
    if (!enabled) return;
    setError(null);
    const sub = gw.client.subscription<T>(query, JSON.parse(vars) as AnyVariables).subscribe((r) => {
      if (r.error) setError(describeError(r.error));
      else if (r.data) handler.current(r.data);
    });
    return () => sub.unsubscribe();
  }, [gw, query, vars, enabled]);
  return error;
}
