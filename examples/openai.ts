// The official `openai` client against the gateway's OpenAI-compatible endpoints: the same keys,
// credits, rate limits and usage log as the GraphQL API.
//
//   GATEWAY_URL=http://localhost:4000/graphql GATEWAY_KEY=<key> npx tsx examples/openai.ts
import OpenAI from 'openai';

const url = process.env.GATEWAY_URL ?? 'http://localhost:4000/graphql';
const key = process.env.GATEWAY_KEY;
const model = process.env.GATEWAY_MODEL ?? 'llama3.2';
if (!key) throw new Error('Set GATEWAY_KEY to an API key of the gateway.');

const openai = new OpenAI({
  apiKey: key,
  baseURL: new URL('/v1', url).toString(), // http://localhost:4000/v1
  maxRetries: 0, // the gateway answers 429 with retry-after; retry yourself where it makes sense
});

const models = [];
for await (const m of openai.models.list()) models.push(m.id);
console.error(`models: ${models.join(', ')}`);

// Streamed: chat.completion.chunk deltas as they arrive.
const stream = await openai.chat.completions.create({
  model,
  messages: [
    { role: 'system', content: 'You are a concise assistant.' },
    { role: 'user', content: 'Why is the sky blue?' },
  ],
  stream: true,
  stream_options: { include_usage: true },
});
let streamed = '';
let streamUsage: OpenAI.CompletionUsage | undefined;
for await (const chunk of stream) {
  const delta = chunk.choices[0]?.delta.content ?? '';
  process.stdout.write(delta);
  streamed += delta;
  if (chunk.usage) streamUsage = chunk.usage;
}
process.stdout.write('\n');

// Whole: one chat.completion with usage.
const completion = await openai.chat.completions.create({
  model,
  messages: [{ role: 'user', content: 'And at sunset?' }],
  temperature: 0.2,
  max_tokens: 64,
});
console.log(completion.choices[0].message.content);

console.log(`RESULT ${JSON.stringify({ models, streamed, streamUsage, text: completion.choices[0].message.content, usage: completion.usage })}`);
