import { type Stringifier, stringify } from 'csv-stringify';
import type { ConversationRow, UsageBucket } from './usage.js';

/** Columns of the conversation export (`/export/conversations.csv` and `llm-gateway export conversations`). */
export const CONVERSATION_COLUMNS: Array<{ key: keyof ConversationRow; header: string }> = [
  { key: 'createdAt', header: 'timestamp' },
  { key: 'keyName', header: 'key_name' },
  { key: 'keyPrefix', header: 'key_prefix' },
  { key: 'model', header: 'model' },
  { key: 'kind', header: 'kind' },
  { key: 'sessionId', header: 'session_id' },
  { key: 'status', header: 'status' },
  { key: 'errorCode', header: 'error_code' },
  { key: 'prompt', header: 'prompt' },
  { key: 'response', header: 'response' },
  { key: 'promptTokens', header: 'prompt_tokens' },
  { key: 'completionTokens', header: 'completion_tokens' },
  { key: 'creditsCharged', header: 'credits_charged' },
  { key: 'id', header: 'generation_id' },
];

/** Columns of the usage export (`llm-gateway export usage`): one row per key, model or UTC day. */
export const USAGE_COLUMNS: Array<{ key: keyof UsageBucket; header: string }> = [
  { key: 'group', header: 'group' },
  { key: 'apiKeyId', header: 'key_id' },
  { key: 'apiKeyName', header: 'key_name' },
  { key: 'apiKeyPrefix', header: 'key_prefix' },
  { key: 'model', header: 'model' },
  { key: 'day', header: 'day' },
  { key: 'requests', header: 'requests' },
  { key: 'completed', header: 'completed' },
  { key: 'cancelled', header: 'cancelled' },
  { key: 'failed', header: 'failed' },
  { key: 'inProgress', header: 'in_progress' },
  { key: 'promptTokens', header: 'prompt_tokens' },
  { key: 'completionTokens', header: 'completion_tokens' },
  { key: 'creditsCharged', header: 'credits_charged' },
];

/** First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection). */
const FORMULA_START = /^[=+\-@\t\r]/;

/** A text cell a spreadsheet would run as a formula gets a leading `'`, so it is shown as text. */
export const neutraliseFormula = (value: string): string => (FORMULA_START.test(value) ? `'${value}` : value);

/**
 * A CSV stringifier (RFC 4180 quoting, header row, ISO-8601 dates) for rows with these columns.
 * Text cells starting with `=`, `+`, `-`, `@`, TAB or CR are neutralised unless `raw` is set.
 */
export function csvOf<T>(columns: Array<{ key: keyof T; header: string }>, opts: { raw?: boolean } = {}): Stringifier {
  return stringify({
    header: true,
    columns: columns as Array<{ key: string; header: string }>,
    cast: { date: (d) => d.toISOString(), ...(opts.raw ? {} : { string: neutraliseFormula }) },
  });
}
