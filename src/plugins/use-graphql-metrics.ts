import { usePrometheus } from '@graphql-yoga/plugin-prometheus';
import type { Plugin } from 'graphql-yoga';
import type { Registry } from 'prom-client';

/**
 * Yoga's Prometheus plugin (request counts, phase durations, error results, HTTP durations) on the
 * gateway's registry. /metrics is served by the gateway's own route (token check), not the plugin.
 * Labels that clients control without bound are off: operation names, request URLs (query
 * strings) and error paths (list indices); operation type, phase and status code stay.
 */
export function useGraphQLMetrics(registry: Registry): Plugin {
  return usePrometheus({
    registry,
    endpoint: false,
    skipIntrospection: true,
    labels: { operationName: false, url: false, path: false },
    // The schema has no deprecated fields, and this counter walks every document with a TypeInfo
    // to look for them (about 3 % of the CPU of a non-streaming request).
    // The request-time summary duplicates graphql_envelop_request_duration (a histogram), and a
    // prom-client summary keeps a sliding window of quantile digests updated on every operation.
    metrics: { graphql_envelop_deprecated_field: false, graphql_envelop_request_time_summary: false },
  });
}
