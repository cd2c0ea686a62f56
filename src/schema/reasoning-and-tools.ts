import type { ToolCall as ToolCallShape } from '../services/generation/types.js';
import { builder } from './builder.js';

export const Think = builder.enumType('Think', {
  description: 'Reasoning (thinking models): on, off, or a level for models that take one. Unset: Ollama\'s default, which is on for thinking models.',
  values: {
    ON: { value: 'on', description: 'Reason before answering; the reasoning streams in `thinking`.' },
    OFF: { value: 'off', description: 'Answer without reasoning.' },
    LOW: { value: 'low', description: 'A little reasoning (models with levels, e.g. gpt-oss).' },
    MEDIUM: { value: 'medium', description: 'Some reasoning (models with levels).' },
    HIGH: { value: 'high', description: 'Much reasoning (models with levels).' },
  } as const,
});

export const ToolCall = builder.objectRef<ToolCallShape>('ToolCall').implement({
  description: 'A call of a tool that the model asks the client to make; answer it with a TOOL message carrying its id.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Identifier of the call; a TOOL message answers it with toolCallId.' }),
    name: t.exposeString('name', { description: 'The tool to call.' }),
    arguments: t.field({ type: 'JSON', description: 'The arguments, a JSON object following the tool\'s parameters schema.', resolve: (c) => c.arguments }),
  }),
});

export const ToolInput = builder.inputType('ToolInput', {
  description: 'A tool (function) the model may call.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Name of the function, 1 to 64 of a-z A-Z 0-9 _ -.' }),
    description: t.string({ required: false, description: 'What it does, for the model.' }),
    parameters: t.field({ type: 'JSON', required: true, description: 'Its arguments as a JSON Schema (an object schema).' }),
  }),
});

export const ToolCallInput = builder.inputType('ToolCallInput', {
  description: 'A tool call an assistant message made, sent back with a stateless history.',
  fields: (t) => ({
    id: t.id({ required: false, description: 'Identifier of the call (as received in toolCalls).' }),
    name: t.string({ required: true, description: 'The tool called.' }),
    arguments: t.field({ type: 'JSON', required: false, description: 'The arguments, a JSON object.' }),
  }),
});

export const ToolResultInput = builder.inputType('ToolResultInput', {
  description: 'The answer of a tool the model called in a session; stored as a TOOL message before the model goes on.',
  fields: (t) => ({
    toolCallId: t.id({ required: true, description: 'The call it answers (ToolCall.id).' }),
    toolName: t.string({ required: false, description: 'The tool that answered (found from the call when omitted).' }),
    content: t.string({ required: true, description: 'What the tool returned, as text (often JSON).' }),
  }),
});

export const FORMAT_HELP = 'Structured output: "json" for any JSON, or a JSON Schema object the answer must follow. A value that is not a valid JSON Schema is BAD_USER_INPUT.';
