// Apollo Client (v4) against the gateway, from Node: queries and mutations over HTTP with the key in
// the `x-api-key` header, subscriptions over graphql-ws with the key in `connectionParams`.
//
//   GATEWAY_URL=http://localhost:4000/graphql GATEWAY_KEY=<key> npx tsx examples/apollo-client.ts
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, ServerError } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { OperationTypeNode } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { type ResultOf, graphql } from './graphql.js';

const url = process.env.GATEWAY_URL ?? 'http://localhost:4000/graphql';
const key = process.env.GATEWAY_KEY;
const model = process.env.GATEWAY_MODEL ?? 'llama3.2';
if (!key) throw new Error('Set GATEWAY_KEY to an API key of the gateway.');

const wsClient = createClient({
  url: url.replace(/^http/, 'ws'),
  webSocketImpl: WebSocket, // Node 20 has no global WebSocket
  connectionParams: { 'x-api-key': key },
});

const client = new ApolloClient({
  cache: new InMemoryCache(),
  // Subscriptions go over the websocket, everything else over HTTP.
  link: ApolloLink.split(
    ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
    new GraphQLWsLink(wsClient),
    new HttpLink({ uri: url, headers: { 'x-api-key': key } }),
  ),
});

const CREATE_SESSION = graphql(`
  mutation CreateSession($input: CreateSessionInput!) {
    createSession(input: $input) { id model systemPrompt }
  }
`);
const CHAT_STREAM = graphql(`
  subscription ChatStream($input: ChatInput!) {
    chat(input: $input) {
      type phase queuePosition delta tokenCount doneReason creditsCharged messageId generationId
      usage { promptTokens completionTokens totalTokens }
    }
  }
`);
const CHAT = graphql(`
  mutation Chat($input: ChatInput!) {
    chat(input: $input) { text generationId history { role content } }
  }
`);

type GenerationEvent = ResultOf<typeof CHAT_STREAM>['chat'];

async function main(): Promise<void> {
  // (a) A session: the gateway keeps the history.
  const created = await client.mutate({
    mutation: CREATE_SESSION,
    variables: { input: { model, systemPrompt: 'You are a concise assistant.', title: 'Apollo example' } },
  });
  const sessionId = created.data!.createSession.id;

  // (b) One turn streamed token by token.
  let streamedText = '';
  let tokens = 0;
  const done = await new Promise<GenerationEvent>((resolve, reject) => {
    let last: GenerationEvent | undefined;
    client.subscribe({
      query: CHAT_STREAM,
      variables: { input: { sessionId, message: 'Hello! What can you do?' } },
    }).subscribe({
      next: ({ data, error }) => {
        if (error) return reject(error);
        last = data!.chat;
        if (last.type === 'PHASE') console.error(`[${last.phase}]`);
        if (last.type === 'TOKEN') {
          tokens++;
          streamedText += last.delta;
          process.stdout.write(last.delta ?? '');
        }
      },
      error: reject,
      complete: () => (last?.type === 'DONE' ? resolve(last) : reject(new Error('stream ended without DONE'))),
    });
  });
  console.log(`\n[done: ${done.usage?.completionTokens} tokens]`);

  // (c) The next turn in one request, with the whole conversation.
  const reply = await client.mutate({
    mutation: CHAT,
    variables: { input: { sessionId, message: 'Thanks. One more thing?' } },
  });
  const { text, history, generationId } = reply.data!.chat;
  for (const m of history) console.log(`${m.role}: ${m.content}`);

  // One machine-readable line at the end (the test in test/e2e/examples.test.ts reads it).
  const { promptTokens, completionTokens, totalTokens } = done.usage!;
  console.log(
    'RESULT ' +
      JSON.stringify({
        sessionId,
        tokens,
        streamedText,
        messageId: done.messageId,
        streamGenerationId: done.generationId,
        usage: { promptTokens, completionTokens, totalTokens },
        replyText: text,
        replyGenerationId: generationId,
        historyRoles: history.map((m) => m.role),
        history: history.map(({ role, content }) => ({ role, content })),
      }),
  );
}

try {
  await main();
} catch (err) {
  // Apollo Client rejects with CombinedGraphQLErrors (message lists every GraphQL error), or with
  // ServerError for a non-2xx status (the gateway refuses a bad key with 401 before running
  // anything); its body holds the gateway's typed error.
  console.error(err instanceof Error ? `${err.name}: ${err.message}` : err);
  if (ServerError.is(err)) console.error(err.bodyText);
  process.exitCode = 1;
} finally {
  client.stop();
  await wsClient.dispose();
}
