// urql (@urql/core) against the gateway, from Node: queries and mutations over HTTP with the key in
// the `x-api-key` header, subscriptions over graphql-ws with the key in `connectionParams`.
//
//   GATEWAY_URL=http://localhost:4000/graphql GATEWAY_KEY=<key> npx tsx examples/urql.ts
import { Client, fetchExchange, subscriptionExchange } from '@urql/core';
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

const client = new Client({
  url,
  fetchOptions: { headers: { 'x-api-key': key } },
  exchanges: [
    fetchExchange, // queries and mutations over HTTP
    subscriptionExchange({
      // subscriptions over the websocket
      forwardSubscription: (request) => ({
        subscribe: (sink) => ({ unsubscribe: wsClient.subscribe({ ...request, query: request.query ?? '' }, sink) }),
      }),
    }),
  ],
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
  // (a) A session: the gateway keeps the history. urql resolves with `error` instead of throwing.
  const created = await client.mutation(CREATE_SESSION, {
    input: { model, systemPrompt: 'You are a concise assistant.', title: 'urql example' },
  });
  if (created.error) throw created.error;
  const sessionId = created.data!.createSession.id;

  // (b) One turn streamed token by token; DONE is always the last event.
  let streamedText = '';
  let tokens = 0;
  const done = await new Promise<GenerationEvent>((resolve, reject) => {
    const { unsubscribe } = client
      .subscription(CHAT_STREAM, { input: { sessionId, message: 'Hello! What can you do?' } })
      .subscribe(({ data, error }) => {
        if (error) return reject(error);
        const event = data!.chat;
        if (event.type === 'PHASE') console.error(`[${event.phase}]`);
        if (event.type === 'TOKEN') {
          tokens++;
          streamedText += event.delta;
          process.stdout.write(event.delta ?? '');
        }
        if (event.type === 'DONE') {
          unsubscribe();
          resolve(event);
        }
      });
  });
  console.log(`\n[done: ${done.usage?.completionTokens} tokens]`);

  // (c) The next turn in one request, with the whole conversation.
  const reply = await client.mutation(CHAT, {
    input: { sessionId, message: 'Thanks. One more thing?' },
  });
  if (reply.error) throw reply.error;
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
  // A CombinedError: its message lists the GraphQL or network errors.
  console.error(err instanceof Error ? `${err.name}: ${err.message}` : err);
  process.exitCode = 1;
} finally {
  await wsClient.dispose();
}
