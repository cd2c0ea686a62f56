import { EnvelopArmor } from '@escape.tech/graphql-armor';
import { GraphQLError, type ValidationContext } from 'graphql';
import type { Plugin } from 'graphql-yoga';

export interface ArmorLimits {
  maxDepth: number;
  maxCost: number;
  maxAliases: number;
  maxDirectives: number;
  maxTokens: number;
}

export const VALIDATION_FAILED = 'GRAPHQL_VALIDATION_FAILED';

/**
 * graphql-armor's envelop plugins: depth, cost, aliases, directives (validation rules) and
 * lexer tokens (a parser that stops counting at the limit, so a huge document is not parsed
 * whole). A limit of 0 turns that protection off.
 *
 * Rejections are reported as validation errors (`extensions.code` GRAPHQL_VALIDATION_FAILED and
 * `extensions.limit`) instead of armor's default of throwing from inside `validate`, which
 * would surface as an internal error over HTTP and close a graphql-ws socket (4500). The token
 * limit fails in `parse`, like any syntax error (GRAPHQL_PARSE_FAILED).
 */
export function useArmor(limits: ArmorLimits): Plugin[] {
  const reportAs = (limit: keyof ArmorLimits) => (ctx: ValidationContext | null, error: GraphQLError) =>
    ctx?.reportError(new GraphQLError(error.message.replace(/^Syntax Error: /, ''), { extensions: { code: VALIDATION_FAILED, limit } }));
  const rule = (limit: keyof ArmorLimits) => ({ enabled: limits[limit] > 0, propagateOnRejection: false, onReject: [reportAs(limit)] });
  const armor = new EnvelopArmor({
    maxDepth: { ...rule('maxDepth'), n: limits.maxDepth },
    costLimit: { ...rule('maxCost'), maxCost: limits.maxCost },
    maxAliases: { ...rule('maxAliases'), n: limits.maxAliases },
    maxDirectives: { ...rule('maxDirectives'), n: limits.maxDirectives },
    maxTokens: { enabled: limits.maxTokens > 0, n: limits.maxTokens },
    // Field suggestions stay: the schema is public (introspection, GraphiQL), hiding names buys nothing.
    blockFieldSuggestion: { enabled: false },
  });
  return armor.protect().plugins as Plugin[];
}
