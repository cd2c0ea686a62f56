import { randomUUID } from 'node:crypto';
import type { GatewayDatabase } from '../db/database.js';
import type { GenerationKind } from '../../entities/generation.js';
import { insertUsageRow } from '../db/generations.js';
import { ErrorCode, type GatewayError } from '../platform/errors.js';
import type { Principal } from '../access/keys.js';
import type { Logger } from '../platform/logger.js';

/** Characters of the prompt a refused request's usage-log row keeps. */
export const REFUSED_EXCERPT_CHARS = 100;

const excerpt = (prompt: string) => (prompt.length > REFUSED_EXCERPT_CHARS ? `${prompt.slice(0, REFUSED_EXCERPT_CHARS)}…` : prompt);

export interface RefusedRequest {
  kind: GenerationKind;
  prompt: string;
  sessionId?: string | null;
}

/**
 * The usage-log row of a request refused before it reached a model (RATE_LIMITED,
 * INSUFFICIENT_CREDITS): one ERROR row, with at most a short excerpt of the prompt and no
 * messages or images, so a flood of refused requests cannot fill the disk.
 */
export async function logRefused(
  deps: { db: GatewayDatabase; log: Logger },
  principal: Principal,
  plan: RefusedRequest,
  model: string,
  meta: { requestId: string; streamed: boolean },
  e: GatewayError,
  host: string | null = null,
): Promise<void> {
  if (e.code !== ErrorCode.RATE_LIMITED && e.code !== ErrorCode.INSUFFICIENT_CREDITS) return;
  const now = new Date();
  const id = randomUUID();
  await deps.db.sqlClient.transaction((tx) =>
    insertUsageRow(tx, {
      id,
      apiKeyId: principal.id,
      sessionId: plan.sessionId ?? null,
      model,
      kind: plan.kind,
      streamed: meta.streamed,
      prompt: excerpt(plan.prompt),
      messages: null,
      host,
      requestId: meta.requestId,
      instanceId: null,
      createdAt: now,
      finishedAt: now,
      status: 'ERROR',
      errorCode: e.code,
      creditsReserved: 0,
      totalDurationMs: 0,
    }),
  );
  deps.log.info({ requestId: meta.requestId, generationId: id, key: principal.prefix, model, kind: plan.kind, outcome: 'ERROR', errorCode: e.code }, 'generation refused');
}
