import SchemaBuilder from '@pothos/core';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { GraphQLError, valueFromASTUntyped } from 'graphql';
import type { GatewayContext } from '../context.js';
import { ErrorCode } from '../services/platform/errors.js';

/** The one Pothos builder. Definitions live in the domain files under src/schema and src/resolvers. */
export const builder = new SchemaBuilder<{
  Context: GatewayContext;
  AuthScopes: { authenticated: boolean; admin: boolean };
  DefaultFieldNullability: false;
  Scalars: { DateTime: { Input: Date; Output: Date }; File: { Input: File; Output: never }; JSON: { Input: unknown; Output: unknown } };
}>({
  plugins: [ScopeAuthPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({
      authenticated: ctx.principal !== null,
      admin: ctx.principal?.role === 'ADMIN',
    }),
    unauthorizedError: (_parent, ctx) =>
      ctx.principal
        ? new GraphQLError('This API key is not allowed to do that.', { extensions: { code: ErrorCode.FORBIDDEN } })
        : new GraphQLError(ctx.badCredentials ? 'The API key is invalid or revoked.' : 'A valid API key is required.', {
            extensions: { code: ErrorCode.UNAUTHENTICATED },
          }),
  },
});

builder.queryType({ description: 'Read the gateway: its health, models, sessions, usage and keys.' });
builder.mutationType({ description: 'Change the gateway or ask a model for a complete answer.' });
builder.subscriptionType({ description: 'Streams: generated tokens, pull progress and model events.' });

builder.scalarType('DateTime', {
  description: 'A point in time, as an ISO-8601 string in UTC.',
  serialize: (value) => value.toISOString(),
  parseValue: (value) => {
    const date = typeof value === 'string' ? new Date(value) : new Date(Number.NaN);
    if (Number.isNaN(date.getTime())) throw new GraphQLError('DateTime must be an ISO-8601 string.', { extensions: { code: ErrorCode.BAD_USER_INPUT } });
    return date;
  },
});

builder.scalarType('JSON', {
  description: 'Any JSON value: an object, an array, a string, a number, a boolean or null (tool arguments, JSON Schemas).',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast, variables) => valueFromASTUntyped(ast, variables ?? undefined),
});

builder.scalarType('File', {
  description: 'A file sent with the GraphQL multipart request specification (input only).',
  serialize: () => {
    throw new GraphQLError('File is an input-only type.');
  },
  parseValue: (value) => {
    // yoga's multipart parser may hand over its own File implementation, so check the shape.
    if (value && typeof value === 'object' && typeof (value as Blob).arrayBuffer === 'function' && 'size' in value) return value as File;
    throw new GraphQLError('Expected a file sent as a multipart upload.', { extensions: { code: ErrorCode.BAD_USER_INPUT } });
  },
});
