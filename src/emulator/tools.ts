// Tool calling for models with the `tools` capability, in the shape of api/types.go ToolCall
// ({id, function: {index, name, arguments: {...object}}}; ids from routes.go toolCallId()).
// Deterministic: the model calls the first tool, with arguments built from its JSON-Schema
// `parameters`; once the conversation ends with a `tool` message, it answers in text from it.

import { createHash } from 'node:crypto';
import type { ChatMessage } from './requests.js';
import { fromSchema } from './script.js';

export interface ToolCall {
  id: string;
  function: { index: number; name: string; arguments: Record<string, unknown> };
}

interface ToolSpec {
  function?: { name?: unknown; parameters?: unknown };
}

/** routes.go toolCallId(): "call_" + 8 of [a-z0-9]; derived from the request here, so replies repeat. */
function toolCallId(seed: string): string {
  const letters = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = createHash('sha256').update(seed).digest();
  return `call_${Array.from(bytes.subarray(0, 8), (b) => letters[b % letters.length]).join('')}`;
}

/**
 * The call the model makes for this request, or undefined when it answers in text: no tools, or the
 * last message already carries a tool's result.
 */
export function toolCallFor(tools: unknown[] | null | undefined, messages: ChatMessage[], promptText: string): ToolCall | undefined {
  const last = messages[messages.length - 1];
  if (!tools || tools.length === 0 || last?.role?.toLowerCase() === 'tool') return undefined;
  const first = tools[0] as ToolSpec | null;
  const name = typeof first?.function?.name === 'string' ? first.function.name : '';
  const words = promptText.trim().split(/\s+/).filter(Boolean).slice(0, 4).join(' ');
  const built = fromSchema(first?.function?.parameters ?? { type: 'object', properties: {} }, words);
  const args = built && typeof built === 'object' && !Array.isArray(built) ? (built as Record<string, unknown>) : {};
  return { id: toolCallId(`${name}\n${promptText}`), function: { index: 0, name, arguments: args } };
}

/** The text answer after a tool ran: it uses what the tool returned. */
export function toolAnswer(messages: ChatMessage[]): string | undefined {
  const last = messages[messages.length - 1];
  if (last?.role?.toLowerCase() !== 'tool') return undefined;
  const tool = last.tool_name ? ` ${last.tool_name}` : '';
  return `The tool${tool} says: ${last.content ?? ''}. That is my answer — merci 🦙.`;
}
