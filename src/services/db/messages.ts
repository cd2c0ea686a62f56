import type { MessageRole, MessageStatus } from '../../entities/message.js';
import type { ToolCall } from '../../entities/generation.js';
import type { SqlExecutor, SqlValue } from './sql-client.js';
import { jsonText, readInt } from './sql-values.js';

// A session chat's statements, run in the transactions of its usage-log row: the new turns at the
// reservation, the partial answer while it streams, the answer at the end.

export interface NewMessage {
  id: string;
  sessionId: string;
  seq: number;
  role: MessageRole;
  content: string;
  status: MessageStatus;
  toolName?: string | null;
  toolCallId?: string | null;
  images?: string[] | null;
  generationId?: string | null;
  createdAt: Date;
}

/** The last turn of a session (seq and status), or undefined when it has none. */
export async function lastMessage(tx: SqlExecutor, sessionId: string): Promise<{ seq: number; status: MessageStatus } | undefined> {
  const row = await tx.get('SELECT seq, status FROM messages WHERE session_id = ? ORDER BY seq DESC LIMIT 1', [sessionId]);
  return row ? { seq: readInt(row.seq), status: row.status as MessageStatus } : undefined;
}

export async function insertMessage(tx: SqlExecutor, m: NewMessage): Promise<void> {
  await tx.run(
    'INSERT INTO messages (id, session_id, seq, role, content, tool_name, tool_call_id, images, status, generation_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    [m.id, m.sessionId, m.seq, m.role, m.content, m.toolName ?? null, m.toolCallId ?? null, jsonText(m.images), m.status, m.generationId ?? null, m.createdAt, m.createdAt],
  );
}

export async function touchSession(tx: SqlExecutor, sessionId: string, at: Date): Promise<void> {
  await tx.run('UPDATE sessions SET updated_at = ? WHERE id = ?', [at, sessionId]);
}

/** The answer of an assistant turn, when its generation ends. */
export async function finishMessage(
  tx: SqlExecutor,
  id: string,
  o: { content: string; thinking: string | null; toolCalls: ToolCall[] | null; status: MessageStatus; completionTokens: number; errorCode: string | null; at: Date },
): Promise<void> {
  const params: SqlValue[] = [o.content, o.thinking, jsonText(o.toolCalls), o.status, o.completionTokens, o.errorCode, o.at, id];
  await tx.run('UPDATE messages SET content = ?, thinking = ?, tool_calls = ?, status = ?, completion_tokens = ?, error_code = ?, updated_at = ? WHERE id = ?', params);
}

export async function setPromptTokens(tx: SqlExecutor, id: string, promptTokens: number, at: Date): Promise<void> {
  await tx.run('UPDATE messages SET prompt_tokens = ?, updated_at = ? WHERE id = ?', [promptTokens, at, id]);
}

/** The text so far of an assistant turn still STREAMING. */
export async function savePartialMessage(tx: SqlExecutor, id: string, p: { content: string; completionTokens: number }): Promise<void> {
  await tx.run("UPDATE messages SET content = ?, completion_tokens = ? WHERE id = ? AND status = 'STREAMING'", [p.content, p.completionTokens, id]);
}

/** Turns left STREAMING by a dead instance (of the given generations, or all) become INTERRUPTED. */
export async function interruptMessages(tx: SqlExecutor, at: Date, generationIds?: string[]): Promise<number> {
  const set = "UPDATE messages SET status = 'INTERRUPTED', error_code = 'INTERRUPTED', updated_at = ? WHERE status = 'STREAMING'";
  if (!generationIds) return tx.run(set, [at]);
  let changed = 0;
  // In slices: SQLite binds at most 32,766 values per statement.
  for (let i = 0; i < generationIds.length; i += 500) {
    const ids = generationIds.slice(i, i + 500);
    changed += await tx.run(`${set} AND generation_id IN (${ids.map(() => '?').join(', ')})`, [at, ...ids]);
  }
  return changed;
}
