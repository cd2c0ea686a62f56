import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Services } from '../../services/container.js';
import type { AuthEdge } from '../../transport/auth.js';
import { type ApiFlavour, type BodyProblem, readJsonBody, sendJson, serveApiRequest } from '../api-request.js';
import { chatCompletions } from './chat-completions.js';
import { embeddings } from './embeddings.js';
import { OpenAIRequestError, toOpenAIError } from './errors.js';
import { listModels, retrieveModel } from './models.js';

const CHAT_COMPLETIONS = '/v1/chat/completions';
const MODELS = '/v1/models';
const EMBEDDINGS = '/v1/embeddings';


function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new OpenAIRequestError('The model in the path is not validly encoded.', 'model');
  }
}


/**
 * The OpenAI-compatible REST API on the gateway's keys, credits, rate limits and usage log:
 * `GET /v1/models`, `GET /v1/models/{model}`, `POST /v1/chat/completions` and `POST /v1/embeddings`. The key comes as
 * `Authorization: Bearer <key>` (or `x-api-key`); errors use OpenAI's `{ error: { ... } }` body.
 */
export function serveOpenAI(req: IncomingMessage, res: ServerResponse, services: Services, edge: AuthEdge): Promise<void> {
  const body = () => readJsonBody(req, services.config.maxBodyBytes, openAIBodyError(services.config.maxBodyBytes));
  return serveApiRequest(req, res, services, edge, OPENAI, async (ctx, path) => {
    if (path === CHAT_COMPLETIONS) {
      if (req.method !== 'POST') throw new OpenAIRequestError('Use POST.', null, 405);
      await chatCompletions(ctx, await body());
    } else if (path === EMBEDDINGS) {
      if (req.method !== 'POST') throw new OpenAIRequestError('Use POST.', null, 405);
      await embeddings(ctx, await body());
    } else if (path === MODELS) {
      if (req.method !== 'GET') throw new OpenAIRequestError('Use GET.', null, 405);
      sendJson(res, 200, await listModels(services));
    } else if (path.startsWith(`${MODELS}/`)) {
      if (req.method !== 'GET') throw new OpenAIRequestError('Use GET.', null, 405);
      sendJson(res, 200, await retrieveModel(services, decodePathPart(path.slice(MODELS.length + 1))));
    } else {
      throw new OpenAIRequestError(`Unknown endpoint ${req.method} ${path}; this gateway serves ${MODELS}, ${CHAT_COMPLETIONS} and ${EMBEDDINGS}.`, null, 404);
    }
  });
}

/** OpenAI's words for a refused body. */
const openAIBodyError = (limit: number) => (problem: BodyProblem) =>
  problem === 'too-large' ? new OpenAIRequestError(`Request body is larger than ${limit} bytes.`, null, 413) : new OpenAIRequestError('The request body is not valid JSON.');

const OPENAI: ApiFlavour = {
  api: 'openai',
  toError: toOpenAIError,
  // After the headers of a stream, an error is one more server-sent event.
  streamedError: (body) => `data: ${JSON.stringify(body)}\n\n`,
  routeName: (path) => (path.startsWith(`${MODELS}/`) ? `${MODELS}/{model}` : path),
};
