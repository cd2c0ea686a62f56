// A tool-calling loop with urql against the gateway: the model asks for a tool, the client runs it
// and sends the answer back as a TOOL message, until the model answers in text. Stateless: the
// client keeps the conversation (a session would keep it with `toolResults` instead).
//
//   GATEWAY_URL=http://localhost:4000/graphql GATEWAY_KEY=<key> npx tsx examples/tools.ts
import { Client, fetchExchange } from '@urql/core';
import { type VariablesOf, graphql } from './graphql.js';

const url = process.env.GATEWAY_URL ?? 'http://localhost:4000/graphql';
const key = process.env.GATEWAY_KEY;
const model = process.env.GATEWAY_MODEL ?? 'llama3.2';
if (!key) throw new Error('Set GATEWAY_KEY to an API key of the gateway.');

const client = new Client({ url, fetchOptions: { headers: { 'x-api-key': key } }, exchanges: [fetchExchange] });

const CHAT = graphql(`
  mutation ToolChat($input: ChatInput!) {
    chat(input: $input) { text doneReason generationId toolCalls { id name arguments } }
  }
`);
type Message = NonNullable<VariablesOf<typeof CHAT>['input']['messages']>[number];

/** The tools this client offers, with what they do when the model calls them. */
const TOOLS = {
  get_weather: {
    description: 'The current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    run: (args: { city?: string }) => ({ city: args.city ?? 'unknown', temperatureC: 21, sky: 'clear' }),
  },
};

async function main(): Promise<void> {
  const messages: Message[] = [{ role: 'USER', content: 'What is the weather in Lisbon?' }];
  const tools = Object.entries(TOOLS).map(([name, t]) => ({ name, description: t.description, parameters: t.parameters }));
  const calls: string[] = [];
  for (let round = 0; round < 4; round++) {
    const { data, error } = await client.mutation(CHAT, { input: { model, messages, tools } });
    if (error || !data) throw error ?? new Error('no answer');
    const answer = data.chat;
    if (answer.toolCalls.length === 0) {
      console.log(`Answer: ${answer.text}`);
      console.log(`RESULT ${JSON.stringify({ calls, answer: answer.text, rounds: round + 1, generationId: answer.generationId })}`);
      return;
    }
    // The model asked for tools: run each and send back the call and its answer.
    messages.push({ role: 'ASSISTANT', content: answer.text, toolCalls: answer.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })) });
    for (const call of answer.toolCalls) {
      const tool = TOOLS[call.name as keyof typeof TOOLS];
      const result = tool ? tool.run(call.arguments as { city?: string }) : { error: `unknown tool ${call.name}` };
      console.log(`Tool ${call.name}(${JSON.stringify(call.arguments)}) -> ${JSON.stringify(result)}`);
      calls.push(call.name);
      messages.push({ role: 'TOOL', toolCallId: call.id, content: JSON.stringify(result) });
    }
  }
  throw new Error('the model kept calling tools');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
