// Embeddings through the gateway, twice: GraphQL `embed` with urql (a typed gql.tada document) and
// `POST /v1/embeddings` with the official `openai` client. Both are paid from the key's credits and
// leave one usage-log row of kind `embed`. Ranks a few texts by cosine similarity to a question.
//
//   GATEWAY_URL=http://localhost:4000/graphql GATEWAY_KEY=<key> npx tsx examples/embeddings.ts
import { Client, fetchExchange } from '@urql/core';
import OpenAI from 'openai';
import { graphql } from './graphql.js';

const url = process.env.GATEWAY_URL ?? 'http://localhost:4000/graphql';
const key = process.env.GATEWAY_KEY;
const model = process.env.GATEWAY_EMBED_MODEL ?? 'nomic-embed-text';
if (!key) throw new Error('Set GATEWAY_KEY to an API key of the gateway.');

const client = new Client({ url, fetchOptions: { headers: { 'x-api-key': key } }, exchanges: [fetchExchange] });

const EMBED = graphql(`
  mutation Embed($input: EmbedInput!) {
    embed(input: $input) { embeddings model usage { promptTokens } creditsCharged generationId }
  }
`);

const texts = ['Llamas live in the Andes.', 'The gateway meters credits per key.', 'Rayleigh scattering makes the sky blue.'];
const question = 'Why is the sky blue?';

// Vectors come L2-normalised, so the dot product is the cosine similarity.
const dot = (a: readonly number[], b: readonly number[]) => a.reduce((s, x, i) => s + x * b[i], 0);

const result = await client.mutation(EMBED, { input: { model, input: [question, ...texts] } }).toPromise();
if (result.error || !result.data) {
  console.error(result.error?.message ?? 'no data');
  process.exit(1);
}
const { embed } = result.data;
const [q, ...docs] = embed.embeddings;
const ranked = texts.map((text, i) => ({ text, score: dot(q, docs[i]) })).sort((a, b) => b.score - a.score);
for (const r of ranked) console.log(`${r.score.toFixed(3)}  ${r.text}`);
console.error(`graphql: ${embed.usage.promptTokens} tokens, ${embed.creditsCharged} credits (usage row ${embed.generationId})`);

// The same through the OpenAI-compatible endpoint (the client asks for base64 and decodes it).
const openai = new OpenAI({ apiKey: key, baseURL: new URL('/v1', url).toString(), maxRetries: 0 });
const viaOpenAI = await openai.embeddings.create({ model, input: question });
console.error(`openai: ${viaOpenAI.data[0].embedding.length} dimensions, ${viaOpenAI.usage.prompt_tokens} tokens`);

console.log(
  `RESULT ${JSON.stringify({
    model: embed.model,
    generationId: embed.generationId,
    creditsCharged: embed.creditsCharged,
    promptTokens: embed.usage.promptTokens,
    dimensions: q.length,
    ranked,
    openaiDimensions: viaOpenAI.data[0].embedding.length,
    openaiPromptTokens: viaOpenAI.usage.prompt_tokens,
  })}`,
);
