import { Lexer, Source, TokenKind } from 'graphql';

// What an SSE request to /graphql asks for, decided before anything runs (src/transport/sse-subscriptions.ts):
// its GraphQL parameters as yoga would read them, the operation its document selects, and the
// processor yoga would pick for a result that is not a stream.

/** The GraphQL-over-HTTP parameters, as yoga's GET and JSON parsers produce them. */
export interface GraphQLParams {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
  extensions?: Record<string, unknown> | null;
}

export type OperationType = 'query' | 'mutation' | 'subscription';

const PARAM_NAMES = new Set(['query', 'variables', 'operationName', 'extensions']);
const OPERATION_KEYWORDS = new Set<string>(['query', 'mutation', 'subscription']);
const MAX_REMEMBERED_QUERIES = 256;
const MAX_REMEMBERED_QUERY_CHARS = 8192;

export type NonStreamProcessor = { kind: 'sse' } | { kind: 'regular'; mediaType: string };

/**
 * The processor yoga's useResultProcessors picks for a result that is not a stream, given the
 * Accept header (its last match wins, in yoga's order: SSE, multipart, JSON); undefined when it
 * would be multipart or nothing, which sse-subscriptions.ts leaves to yoga. A stream always goes to SSE
 * here, as in yoga, since Accept names text/event-stream.
 */
export function nonStreamProcessor(accept: string): NonStreamProcessor | undefined {
  const asked = acceptedMediaTypes(accept);
  let picked: NonStreamProcessor | 'multipart' | undefined;
  const candidates: Array<[string[], (mediaType: string) => NonStreamProcessor | 'multipart']> = [
    [['text/event-stream'], () => ({ kind: 'sse' })],
    [['multipart/mixed'], () => 'multipart'],
    [['application/graphql-response+json', 'application/json'], (mediaType) => ({ kind: 'regular', mediaType })],
  ];
  for (const [mediaTypes, make] of candidates) {
    for (const requested of asked) for (const offered of mediaTypes) if (mediaTypeMatches(offered, requested)) picked = make(offered);
  }
  if (!asked.includes('text/event-stream')) return undefined;
  return picked === 'multipart' ? undefined : picked;
}

/** yoga's getMediaTypesForRequestInOrder: the media types asked for with utf-8 (or no) charset, last first. */
function acceptedMediaTypes(accept: string): string[] {
  const out: string[] = [];
  for (const entry of accept.replace(/\s/g, '').toLowerCase().split(',')) {
    const [mediaType, ...parameters] = entry.split(';');
    const charset = parameters.find((p) => p.includes('charset=')) ?? 'charset=utf-8';
    if (mediaType !== undefined && charset === 'charset=utf-8') out.push(mediaType);
  }
  return out.reverse();
}

function mediaTypeMatches(asked: string, offered: string): boolean {
  const [askedType, askedSub] = asked.split('/');
  const [type, sub] = offered.split('/');
  return (type === '*' || type === askedType) && (sub === '*' || sub === askedSub);
}

/** yoga's isPOSTJsonRequest. */
export function isJsonContentType(contentType: string | undefined): boolean {
  const first = contentType?.split(',')[0];
  return ['application/json', 'application/graphql+json'].some((t) => first === t || !!first?.startsWith(`${t};`));
}

const isObjectOrAbsent = (v: unknown) => v == null || (typeof v === 'object' && !Array.isArray(v));

/** Parameters yoga would accept without complaint; undefined for anything else (yoga then answers it). */
function checkedParams(raw: unknown): GraphQLParams | undefined {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const p = raw as Record<string, unknown>;
  for (const key in p) if (p[key] != null && !PARAM_NAMES.has(key)) return undefined;
  if (typeof p.query !== 'string' || !p.query) return undefined;
  if (p.operationName != null && typeof p.operationName !== 'string') return undefined;
  if (!isObjectOrAbsent(p.variables) || !isObjectOrAbsent(p.extensions)) return undefined;
  return p as unknown as GraphQLParams;
}

export function paramsFromJson(body: Buffer): GraphQLParams | undefined {
  try {
    return checkedParams(JSON.parse(body.toString('utf8')));
  } catch {
    return undefined;
  }
}

/** yoga's parseGETRequest (empty values count as absent). */
export function paramsFromUrl(url: string): GraphQLParams | undefined {
  const search = new URLSearchParams(url.slice(url.indexOf('?') + 1));
  try {
    const variables = search.get('variables') || undefined;
    const extensions = search.get('extensions') || undefined;
    return checkedParams({
      query: search.get('query') || undefined,
      operationName: search.get('operationName') || undefined,
      variables: variables ? JSON.parse(variables) : undefined,
      extensions: extensions ? JSON.parse(extensions) : undefined,
    });
  } catch {
    return undefined;
  }
}

/**
 * The type of the operation a document selects, read from its top-level tokens without
 * building the AST (the envelop pipeline parses it once, after the decision). Undefined when it
 * is unclear (a lexing error, an unknown operation name, more tokens than MAX_TOKENS): yoga then
 * answers the request. Remembered per query text, as clients send the same few documents.
 */
export class OperationTypeCache {
  private readonly known = new Map<string, Map<string | null, OperationType> | null>();

  constructor(private readonly maxTokens: number) {}

  selected(query: string, operationName: string | null | undefined): OperationType | undefined {
    let operations = this.known.get(query);
    if (operations === undefined) {
      operations = this.scan(query);
      // Bounded in entries and in size, whatever documents clients send.
      if (query.length <= MAX_REMEMBERED_QUERY_CHARS) {
        if (this.known.size >= MAX_REMEMBERED_QUERIES) this.known.clear();
        this.known.set(query, operations);
      }
    }
    if (!operations) return undefined;
    if (operationName) return operations.get(operationName);
    return operations.size === 1 ? operations.values().next().value : undefined;
  }

  /** Operation types by name (null: anonymous); null when the document cannot be read this way. */
  private scan(query: string): Map<string | null, OperationType> | null {
    const operations = new Map<string | null, OperationType>();
    try {
      const lexer = new Lexer(new Source(query));
      let depth = 0;
      let atDefinitionStart = true;
      let tokens = 0;
      for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
        if (this.maxTokens > 0 && ++tokens > this.maxTokens) return null;
        const kind = token.kind;
        if (kind === TokenKind.BRACE_L || kind === TokenKind.PAREN_L || kind === TokenKind.BRACKET_L) {
          // A shorthand query: `{ ... }`.
          if (atDefinitionStart && depth === 0 && kind === TokenKind.BRACE_L) {
            if (operations.has(null)) return null;
            operations.set(null, 'query');
            atDefinitionStart = false;
          }
          depth++;
        } else if (kind === TokenKind.BRACE_R || kind === TokenKind.PAREN_R || kind === TokenKind.BRACKET_R) {
          if (--depth < 0) return null;
          // Every executable definition ends with its selection set.
          if (depth === 0 && kind === TokenKind.BRACE_R) atDefinitionStart = true;
        } else if (atDefinitionStart && depth === 0) {
          atDefinitionStart = false;
          if (kind !== TokenKind.NAME || !token.value) return null;
          if (token.value === 'fragment') continue;
          if (!OPERATION_KEYWORDS.has(token.value)) return null;
          const next = lexer.lookahead();
          const name = next.kind === TokenKind.NAME ? next.value! : null;
          if (operations.has(name)) return null;
          operations.set(name, token.value as OperationType);
        }
      }
      return depth === 0 && operations.size > 0 ? operations : null;
    } catch {
      return null;
    }
  }
}
