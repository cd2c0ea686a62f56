// The rarely used parts of the HTTP surface, imported on their first request: GraphiQL's page
// (its assets are inlined, tens of MiB of heap), the OpenAI-compatible and Ollama REST APIs and
// the CSV export. An idle gateway, or one serving only GraphQL, never holds them
// (docs/performance.md, "Idle memory"). The path checks stay eager (src/routes/paths.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GraphiQLOptions } from 'graphql-yoga';
import type { Services } from '../services/container.js';
import { onFirstUse } from '../services/platform/on-first-use.js';
import type { AuthEdge } from './auth.js';

type RouteHandler = (req: IncomingMessage, res: ServerResponse, services: Services, edge: AuthEdge) => Promise<void>;

const graphiQL = onFirstUse(() => import('@graphql-yoga/render-graphiql'));
const openAI = onFirstUse(() => import('../routes/openai/router.js'));
const ollama = onFirstUse(() => import('../routes/ollama/router.js'));
const conversationsExport = onFirstUse(() => import('../routes/export-conversations.js'));

/** GraphiQL with its assets inlined (no CDN: GPU hosts often have no internet access), for yoga's `renderGraphiQL`. */
export const renderGraphiQL = async (opts: GraphiQLOptions): Promise<string> => (await graphiQL()).renderGraphiQL(opts);

export const serveOpenAI: RouteHandler = async (...args) => (await openAI()).serveOpenAI(...args);
export const serveOllama: RouteHandler = async (...args) => (await ollama()).serveOllama(...args);
export const exportConversations: RouteHandler = async (...args) => (await conversationsExport()).exportConversations(...args);
