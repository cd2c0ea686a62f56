// Tool calling between OpenAI's wire and the gateway's: OpenAI sends and expects a call's
// `arguments` as a JSON string, Ollama and the gateway's ToolCall hold a JSON object.
import { z } from 'zod';
import type { ToolCall, ToolDefinition } from '../../services/generation/types.js';
import { OpenAIRequestError } from './errors.js';

// Names, the number of tools and each schema are checked by the generation core (checkTools), once for every API.
export const toolSchema = z.looseObject({
  type: z.literal('function'),
  function: z.looseObject({
    name: z.string(),
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
    // Accepted; Ollama has no strict mode, the schema is passed as given.
    strict: z.boolean().nullish(),
  }),
});
export const toolsSchema = z.array(toolSchema);

export const toolChoiceSchema = z.union([
  z.enum(['auto', 'none', 'required']),
  z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string() }) }),
]);

/** An assistant message's earlier call, as OpenAI clients send it back in the history. */
export const historyToolCallSchema = z.looseObject({
  id: z.string().min(1),
  type: z.literal('function'),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string() }),
});

/**
 * The tools to send to Ollama. `auto` (the default) and `none` (send no tools) are what Ollama
 * can do; it cannot force a call, so `required` and a named function are refused.
 */
export function toolsFor(tools: z.infer<typeof toolsSchema> | null | undefined, choice: z.infer<typeof toolChoiceSchema> | null | undefined): ToolDefinition[] | undefined {
  if (choice !== undefined && choice !== null && choice !== 'auto' && choice !== 'none') {
    const what = choice === 'required' ? "'required'" : 'a named function';
    throw new OpenAIRequestError(`tool_choice ${what} is not supported: Ollama cannot force a tool call. Use 'auto' or 'none'.`, 'tool_choice');
  }
  if (!tools?.length || choice === 'none') return undefined;
  return tools.map((t) => ({
    name: t.function.name,
    description: t.function.description ?? null,
    parameters: t.function.parameters ?? { type: 'object', properties: {} },
  }));
}

/** An earlier call from the history, its `arguments` string parsed into the object Ollama expects. */
export function parseHistoryCall(call: z.infer<typeof historyToolCallSchema>, param: string): { id: string; name: string; arguments: Record<string, unknown> } {
  let args: unknown;
  try {
    args = JSON.parse(call.function.arguments);
  } catch {
    throw new OpenAIRequestError('Tool call arguments must be a JSON string of an object; this is not valid JSON.', `${param}.function.arguments`);
  }
  if (!args || typeof args !== 'object' || Array.isArray(args)) {
    throw new OpenAIRequestError('Tool call arguments must be a JSON object.', `${param}.function.arguments`);
  }
  return { id: call.id, name: call.function.name, arguments: args as Record<string, unknown> };
}

/** A call in an answer, as OpenAI's `message.tool_calls[]`; `index` for streamed deltas. */
export function openAIToolCall(call: ToolCall, index?: number) {
  return {
    ...(index === undefined ? {} : { index }),
    id: call.id,
    type: 'function' as const,
    function: { name: call.name, arguments: JSON.stringify(call.arguments) },
  };
}
