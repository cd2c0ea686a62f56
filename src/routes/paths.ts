// The paths of the routes beside GraphQL, apart from their handlers: the server matches requests
// against them without loading the handlers, which are imported on first use
// (src/transport/lazy-routes.ts).

export const OPENAI_PREFIX = '/v1/';
export const OLLAMA_PREFIX = '/api/';
export const EXPORT_CONVERSATIONS_PATH = '/export/conversations.csv';

/** Whether a request URL belongs to the OpenAI-compatible API. */
export function isOpenAIPath(url: string | undefined): boolean {
  return url?.startsWith(OPENAI_PREFIX) ?? false;
}

/** Whether a request URL belongs to Ollama's own API. */
export function isOllamaPath(url: string | undefined): boolean {
  return url?.startsWith(OLLAMA_PREFIX) ?? false;
}
