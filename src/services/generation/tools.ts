import { randomUUID } from 'node:crypto';
import type { GenerationMessage, ToolCall } from '../../entities/generation.js';
import { badInput } from '../platform/errors.js';
import { checkFormat } from './structured-output.js';
import type { ToolDefinition } from './types.js';

const MAX_TOOLS = 128;
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Validates the tools of a request (names, and parameters as a JSON Schema object); BAD_USER_INPUT otherwise. */
export function checkTools(tools: ReadonlyArray<{ name: string; description?: string | null; parameters?: unknown }> | null | undefined): ToolDefinition[] | undefined {
  if (!tools?.length) return undefined;
  if (tools.length > MAX_TOOLS) throw badInput(`At most ${MAX_TOOLS} tools.`, { field: 'tools' });
  const names = new Set<string>();
  return tools.map((t, i) => {
    if (!TOOL_NAME.test(t.name)) throw badInput(`tools[${i}].name must be 1 to 64 of a-z A-Z 0-9 _ -.`, { field: `tools[${i}].name` });
    if (names.has(t.name)) throw badInput(`tools[${i}].name repeats "${t.name}".`, { field: `tools[${i}].name` });
    names.add(t.name);
    if (!t.parameters || typeof t.parameters !== 'object' || Array.isArray(t.parameters)) {
      throw badInput(`tools[${i}].parameters must be a JSON Schema object.`, { field: `tools[${i}].parameters` });
    }
    try {
      checkFormat(t.parameters);
    } catch {
      throw badInput(`tools[${i}].parameters is not a valid JSON Schema.`, { field: `tools[${i}].parameters` });
    }
    return { name: t.name, description: t.description ?? null, parameters: t.parameters as Record<string, unknown> };
  });
}

interface StatedMessage {
  role: GenerationMessage['role'];
  content: string;
  images?: readonly string[] | null;
  toolCalls?: ReadonlyArray<{ id?: string | null; name: string; arguments?: unknown }> | null;
  toolName?: string | null;
  toolCallId?: string | null;
}

/**
 * A history a client states (stateless chat) as the gateway sends it on: assistant tool calls
 * with ids (given, or the gateway's), and TOOL answers with their tool's name, found from the call
 * they answer when not given. A TOOL message answering no earlier call is BAD_USER_INPUT.
 */
export function statedHistory(messages: readonly StatedMessage[], image: (base64: string, message: number, index: number) => string): GenerationMessage[] {
  const calls = new Map<string, string>();
  return messages.map((m, i) => {
    const out: GenerationMessage = { role: m.role, content: m.content };
    if (m.images?.length) out.images = m.images.map((b, j) => image(b, i, j));
    if (m.toolCalls?.length) {
      if (m.role !== 'assistant') throw badInput(`messages[${i}]: only ASSISTANT messages carry toolCalls.`, { field: `messages[${i}].toolCalls` });
      out.toolCalls = m.toolCalls.map((c, j): ToolCall => {
        const args = c.arguments ?? {};
        if (typeof args !== 'object' || Array.isArray(args)) throw badInput(`messages[${i}].toolCalls[${j}].arguments must be a JSON object.`, { field: `messages[${i}].toolCalls[${j}].arguments` });
        const id = c.id || `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
        calls.set(id, c.name);
        return { id, name: c.name, arguments: args as Record<string, unknown> };
      });
    }
    if (m.role === 'tool') {
      const toolName = m.toolName ?? (m.toolCallId ? calls.get(m.toolCallId) : undefined);
      if (!toolName) throw badInput(`messages[${i}]: a TOOL message needs toolName, or a toolCallId of an earlier call.`, { field: `messages[${i}].toolCallId` });
      out.toolName = toolName;
      if (m.toolCallId) out.toolCallId = m.toolCallId;
    }
    return out;
  });
}
