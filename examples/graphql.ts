// Typed GraphQL documents for the examples: gql.tada infers each document's result and variables
// from the gateway's schema, so Apollo's and urql's results are typed without hand-written
// interfaces, and a field the schema does not have fails the typecheck. graphql-env.d.ts is the
// schema (schema.graphql) introspected by `npm run examples:types`; rerun it when the schema changes
// (test/unit/examples-types.test.ts fails while it is stale).
import { initGraphQLTada } from 'gql.tada';
import type { introspection } from './graphql-env.js';

export const graphql = initGraphQLTada<{
  introspection: introspection;
  scalars: { DateTime: string; File: never };
}>();

export type { ResultOf, VariablesOf } from 'gql.tada';
