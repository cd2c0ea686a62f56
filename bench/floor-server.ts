// Child process: a "floor" relay, the least a Node.js process in front of Ollama can do, so the
// benchmark can say how much of the gateway's added first-token time any relay on this stack pays
// and how much is the gateway's own work (keys, credits, usage log, admission, its plugins).
// Started by bench/floor.ts as `node --import tsx bench/floor-server.ts <kind>`; prints one JSON
// line {"url": ...} once listening. Env: FLOOR_OLLAMA_URL (the emulator).
//
// Every kind streams `generate` with the same `ollama` client and the same transport as the gateway
// (src/services/ollama/http-fetch.ts), and answers the bench's graphql-ws subscription document
// (bench/lib/clients.ts SUBSCRIPTION) with the same event shape. None has keys, a database or
// limits: they are measuring instruments, not servers to run.
// - `graphql-ws`: graphql-ws's own `useServer` on `ws` with a plain graphql-js schema.
// - `yoga-ws`: the same schema through graphql-yoga's envelop pipeline (no plugins), served by
//   graphql-ws as yoga's documentation shows.

import { createServer } from 'node:http';
import { buildSchema, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga } from 'graphql-yoga';
import { Ollama } from 'ollama';
import { WebSocketServer } from 'ws';
import { type ClientInit, OllamaHttpTransport } from '../src/services/ollama/http-fetch.js';

const kind = process.argv[2];
const ollamaUrl = process.env.FLOOR_OLLAMA_URL;
if (!ollamaUrl || (kind !== 'graphql-ws' && kind !== 'yoga-ws')) {
  console.error('usage: FLOOR_OLLAMA_URL=<url> node --import tsx bench/floor-server.ts graphql-ws|yoga-ws');
  process.exit(2);
}

const transport = new OllamaHttpTransport();
const ollama = new Ollama({ host: ollamaUrl, fetch: (input, init) => transport.fetch(input as string, init as ClientInit) });

const schema = buildSchema(/* GraphQL */ `
  input GenerateOptions { maxTokens: Int }
  input GenerateInput { model: String!, prompt: String!, options: GenerateOptions }
  type Usage { completionTokens: Int! }
  type GenerationEvent { type: String!, delta: String, tokenCount: Int, usage: Usage }
  type Query { ok: Boolean }
  type Subscription { generate(input: GenerateInput!): GenerationEvent! }
`);

type Input = { model: string; prompt: string; options?: { maxTokens?: number } };

/** One event per Ollama chunk with text, then DONE. */
async function* generate(input: Input): AsyncGenerator<{ generate: Record<string, unknown> }> {
  const it = await ollama.generate({ model: input.model, prompt: input.prompt, stream: true, options: { num_predict: input.options?.maxTokens } });
  try {
    for await (const chunk of it) {
      if (chunk.response) yield { generate: { type: 'TOKEN', delta: chunk.response, tokenCount: 1 } };
      if (chunk.done) {
        yield { generate: { type: 'DONE', delta: null, tokenCount: null, usage: { completionTokens: chunk.eval_count } } };
        return;
      }
    }
  } finally {
    it.abort();
  }
}

const rootValue = { generate: (args: { input: Input }) => generate(args.input) };

const server = createServer((_req, res) => res.end('ok'));
const wss = new WebSocketServer({ server, path: '/graphql' });

if (kind === 'graphql-ws') {
  useServer({ schema, roots: { subscription: rootValue } }, wss);
} else {
  const yoga = createYoga({ schema, logging: false, landingPage: false, graphiql: false });
  useServer(
    {
      execute: (args) => (args as ExecutionArgs & { rootValue: { execute(a: ExecutionArgs): never } }).rootValue.execute(args),
      subscribe: (args) => (args as ExecutionArgs & { rootValue: { subscribe(a: ExecutionArgs): never } }).rootValue.subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const { schema: s, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({ ...ctx, req: ctx.extra.request, socket: ctx.extra.socket, params });
        const document = parse(params.query);
        const errors = validate(s, document);
        if (errors.length) return errors;
        // yoga's recipe passes execute/subscribe on rootValue; here the resolvers' root is wrapped.
        return { schema: s, operationName: params.operationName, document, variableValues: params.variables, contextValue: await contextFactory(), rootValue: Object.assign(Object.create(rootValue), { execute, subscribe }) };
      },
    },
    wss,
  );
}

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});
