import type { GenerationKind, GenerationMessage, GenerationStatus, ToolCall } from '../../entities/generation.js';
import type { SqlExecutor, SqlValue } from './sql-client.js';
import { jsonText, readInt } from './sql-values.js';

// The usage log's statements of every request: the row at the reservation (or at a refusal), the
// partial text while it streams, and the outcome.

/** The columns a usage-log row starts with; the others take their defaults. */
export interface UsageRowStart {
  id: string;
  apiKeyId: string;
  sessionId: string | null;
  model: string;
  kind: GenerationKind;
  streamed: boolean;
  prompt: string;
  messages: GenerationMessage[] | null;
  requestId: string | null;
  host: string | null;
  instanceId: string | null;
  status: GenerationStatus;
  creditsReserved: number;
  createdAt: Date;
  /** Set at once for a refused request. */
  errorCode?: string | null;
  finishedAt?: Date | null;
  totalDurationMs?: number | null;
}

export async function insertUsageRow(tx: SqlExecutor, row: UsageRowStart): Promise<void> {
  await tx.run(
    'INSERT INTO generations (id, api_key_id, session_id, model, kind, streamed, prompt, messages, request_id, host, instance_id, status, credits_reserved, created_at, error_code, finished_at, total_duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    [
      row.id,
      row.apiKeyId,
      row.sessionId,
      row.model,
      row.kind,
      row.streamed,
      row.prompt,
      jsonText(row.messages),
      row.requestId,
      row.host,
      row.instanceId,
      row.status,
      row.creditsReserved,
      row.createdAt,
      row.errorCode ?? null,
      row.finishedAt ?? null,
      row.totalDurationMs ?? null,
    ],
  );
}

/** How a generation ended, as its row keeps it. */
export interface UsageOutcome {
  status: Exclude<GenerationStatus, 'STREAMING'>;
  response: string;
  thinking: string | null;
  toolCalls: ToolCall[] | null;
  promptTokens: number;
  completionTokens: number;
  creditsCharged: number;
  errorCode: string | null;
  doneReason: string | null;
  firstTokenMs: number | null;
  host: string | null;
  totalDurationMs: number;
  finishedAt: Date;
}

/** Writes the outcome of a row still STREAMING; false when it was settled already (by a sweep). */
export async function finishUsageRow(tx: SqlExecutor, id: string, o: UsageOutcome): Promise<boolean> {
  const params: SqlValue[] = [
    o.status,
    o.response,
    o.thinking,
    jsonText(o.toolCalls),
    o.promptTokens,
    o.completionTokens,
    o.creditsCharged,
    o.errorCode,
    o.doneReason,
    o.firstTokenMs,
    o.host,
    o.totalDurationMs,
    o.finishedAt,
    id,
  ];
  const sql =
    'UPDATE generations SET status = ?, response = ?, thinking = ?, tool_calls = ?, prompt_tokens = ?, completion_tokens = ?, credits_charged = ?, error_code = ?, done_reason = ?, first_token_ms = ?, host = ?, total_duration_ms = ?, finished_at = ? ' +
    "WHERE id = ? AND status = 'STREAMING'";
  return (await tx.run(sql, params)) > 0;
}

/** The text so far of a row still STREAMING (what a crash leaves), and what it would cost. */
export async function savePartialUsageRow(tx: SqlExecutor, id: string, p: { response: string; completionTokens: number; creditsCharged: number }): Promise<void> {
  await tx.run("UPDATE generations SET response = ?, completion_tokens = ?, credits_charged = ? WHERE id = ? AND status = 'STREAMING'", [p.response, p.completionTokens, p.creditsCharged, id]);
}

/** A row left STREAMING, as the crash sweep needs it. */
export interface StreamingRow {
  id: string;
  apiKeyId: string;
  instanceId: string | null;
  creditsReserved: number;
  creditsCharged: number;
}

export async function streamingUsageRows(tx: SqlExecutor): Promise<StreamingRow[]> {
  const rows = await tx.all("SELECT id, api_key_id, instance_id, credits_reserved, credits_charged FROM generations WHERE status = 'STREAMING'");
  return rows.map((r) => ({
    id: String(r.id),
    apiKeyId: String(r.api_key_id),
    instanceId: r.instance_id === null || r.instance_id === undefined ? null : String(r.instance_id),
    creditsReserved: readInt(r.credits_reserved),
    creditsCharged: readInt(r.credits_charged),
  }));
}

/** Settles a row a dead instance left STREAMING; false when someone settled it first. */
export async function interruptUsageRow(tx: SqlExecutor, id: string, creditsCharged: number, at: Date): Promise<boolean> {
  const sql = "UPDATE generations SET status = 'INTERRUPTED', error_code = 'INTERRUPTED', credits_charged = ?, finished_at = ? WHERE id = ? AND status = 'STREAMING'";
  return (await tx.run(sql, [creditsCharged, at, id])) > 0;
}
