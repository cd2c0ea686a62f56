import type { Repository, SelectQueryBuilder } from 'typeorm';
import type { GatewayDatabase } from '../db/database.js';
import type { Generation } from '../../entities/generation.js';
import { ErrorCode, GatewayError, badInput } from '../platform/errors.js';
import type { Principal } from './keys.js';

export const USAGE_GROUPS = ['KEY', 'MODEL', 'DAY'] as const;
export type UsageGroupBy = (typeof USAGE_GROUPS)[number];

/** A half-open time range [from, to). */
export interface TimeRange {
  from: Date;
  to: Date;
}

/** Totals for one key, model or UTC day. */
export interface UsageBucket {
  /** The key id, the model name, or the day as YYYY-MM-DD (UTC). */
  group: string;
  apiKeyId: string | null;
  apiKeyName: string | null;
  apiKeyPrefix: string | null;
  model: string | null;
  day: string | null;
  requests: number;
  completed: number;
  cancelled: number;
  /** ERROR and INTERRUPTED rows (refused, upstream failures, crashes). */
  failed: number;
  inProgress: number;
  promptTokens: number;
  completionTokens: number;
  creditsCharged: number;
}

export interface GenerationPage {
  entries: Generation[];
  total: number;
  /** Pass as `after` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** One line of the conversation export. */
export interface ConversationRow {
  id: string;
  createdAt: Date;
  keyName: string;
  keyPrefix: string;
  model: string;
  kind: string;
  sessionId: string | null;
  status: string;
  errorCode: string | null;
  prompt: string;
  response: string;
  promptTokens: number;
  completionTokens: number;
  creditsCharged: number;
}

export const MAX_PAGE_SIZE = 200;
const EXPORT_BATCH = 500;

/** Validates a range; `from` defaults to the beginning of time and `to` to now. */
export function timeRange(from?: Date | null, to?: Date | null): TimeRange {
  const range = { from: from ?? new Date(0), to: to ?? new Date() };
  if (Number.isNaN(range.from.getTime()) || Number.isNaN(range.to.getTime())) throw badInput('from and to must be valid dates.');
  if (range.from >= range.to) throw badInput('from must be earlier than to.', { field: 'from' });
  return range;
}

/**
 * Whose usage a caller may read: an admin any key's (or all, without `apiKeyId`); any other key
 * only its own, and asking for another key is FORBIDDEN rather than silently narrowed.
 * Returns the key id to filter on, or undefined for all keys.
 */
export function usageScope(principal: Principal, apiKeyId: string | null | undefined, allByDefault: boolean): string | undefined {
  if (principal.role === 'ADMIN') return apiKeyId ?? (allByDefault ? undefined : principal.id);
  if (apiKeyId && apiKeyId !== principal.id) {
    throw new GatewayError(ErrorCode.FORBIDDEN, 'A key may only read its own usage.');
  }
  return principal.id;
}

/** The scope of an every-key read of the usage log: null (all keys) for an admin. */
export function allKeysScope(principal: Principal, apiKeyId: unknown): null {
  if (principal.role !== 'ADMIN') throw new GatewayError(ErrorCode.FORBIDDEN, 'Only an admin key may read every key\'s usage.');
  if (apiKeyId !== null && apiKeyId !== undefined) throw badInput('Give apiKeyId or allKeys, not both.', { field: 'allKeys' });
  return null;
}

const encodeCursor = (g: Pick<Generation, 'createdAt' | 'id'>) => Buffer.from(`${g.createdAt.toISOString()}|${g.id}`).toString('base64url');

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!id || Number.isNaN(createdAt.getTime())) throw badInput('after is not a cursor this API returned.', { field: 'after' });
  return { createdAt, id };
}

const count = (v: unknown) => Number(v ?? 0);

/** The usage log: aggregates, a key's own rows, and the conversation export. */
export class UsageService {
  constructor(private readonly db: GatewayDatabase) {}

  private get postgres(): boolean {
    return this.db.dialect === 'postgres';
  }

  /** The usage log's repository, loading TypeORM on first use (entities by name: their classes import TypeORM). */
  private async generationRepo(): Promise<Repository<Generation>> {
    return (await this.db.orm()).getRepository<Generation>('Generation');
  }

  /** Requests, statuses, tokens and credits per key, model or UTC day, in `range`. */
  async aggregate(range: TimeRange, groupBy: UsageGroupBy, apiKeyId?: string): Promise<UsageBucket[]> {
    const qb = (await this.generationRepo()).createQueryBuilder('g');
    const day = this.postgres ? `to_char(g.createdAt AT TIME ZONE 'UTC', 'YYYY-MM-DD')` : 'substr(g.createdAt, 1, 10)';
    if (groupBy === 'KEY') {
      qb.leftJoin('ApiKey', 'k', 'k.id = g.apiKeyId')
        .select('g.apiKeyId', 'grp')
        .addSelect('k.name', 'keyName')
        .addSelect('k.prefix', 'keyPrefix')
        .groupBy('g.apiKeyId')
        .addGroupBy('k.name')
        .addGroupBy('k.prefix');
    } else {
      const expr = groupBy === 'MODEL' ? 'g.model' : day;
      qb.select(expr, 'grp').groupBy(expr);
    }
    const status = (list: string) => `SUM(CASE WHEN g.status IN (${list}) THEN 1 ELSE 0 END)`;
    qb.addSelect('COUNT(*)', 'requests')
      .addSelect(status(`'COMPLETE'`), 'completed')
      .addSelect(status(`'CANCELLED'`), 'cancelled')
      .addSelect(status(`'ERROR', 'INTERRUPTED'`), 'failed')
      .addSelect(status(`'STREAMING'`), 'inProgress')
      .addSelect('COALESCE(SUM(g.promptTokens), 0)', 'promptTokens')
      .addSelect('COALESCE(SUM(g.completionTokens), 0)', 'completionTokens')
      .addSelect('COALESCE(SUM(g.creditsCharged), 0)', 'creditsCharged');
    this.inRange(qb, range, apiKeyId).orderBy('grp', 'ASC');

    const rows: Array<Record<string, unknown>> = await qb.getRawMany();
    return rows.map((r) => {
      const group = String(r.grp);
      return {
        group,
        apiKeyId: groupBy === 'KEY' ? group : null,
        apiKeyName: groupBy === 'KEY' ? ((r.keyName as string | null) ?? null) : null,
        apiKeyPrefix: groupBy === 'KEY' ? ((r.keyPrefix as string | null) ?? null) : null,
        model: groupBy === 'MODEL' ? group : null,
        day: groupBy === 'DAY' ? group : null,
        requests: count(r.requests),
        completed: count(r.completed),
        cancelled: count(r.cancelled),
        failed: count(r.failed),
        inProgress: count(r.inProgress),
        promptTokens: count(r.promptTokens),
        completionTokens: count(r.completionTokens),
        creditsCharged: count(r.creditsCharged),
      };
    });
  }

  /** One key's usage-log rows (every key's with null), newest first, `first` at a time after `after`. */
  async generations(apiKeyId: string | null, opts: { first: number; after?: string | null }): Promise<GenerationPage> {
    if (!Number.isInteger(opts.first) || opts.first < 1 || opts.first > MAX_PAGE_SIZE) {
      throw badInput(`first must be from 1 to ${MAX_PAGE_SIZE}.`, { field: 'first' });
    }
    const repo = await this.generationRepo();
    const qb = repo
      .createQueryBuilder('g')
      .orderBy('g.createdAt', 'DESC')
      .addOrderBy('g.id', 'DESC')
      .limit(opts.first + 1);
    if (apiKeyId !== null) qb.andWhere('g.apiKeyId = :apiKeyId', { apiKeyId });
    if (opts.after) {
      const cursor = decodeCursor(opts.after);
      qb.andWhere('(g.createdAt < :at OR (g.createdAt = :at AND g.id < :id))', { at: cursor.createdAt, id: cursor.id });
    }
    const [rows, total] = await Promise.all([qb.getMany(), repo.count({ where: apiKeyId === null ? {} : { apiKeyId } })]);
    const entries = rows.slice(0, opts.first);
    return { entries, total, nextCursor: rows.length > opts.first ? encodeCursor(entries.at(-1)!) : null };
  }

  /**
   * Every generation in `range`, oldest first, with its key's name, read in batches (keyset
   * pagination) so an export never holds the whole log in memory.
   */
  async *conversations(range: TimeRange): AsyncGenerator<ConversationRow> {
    let after: { createdAt: Date; id: string } | undefined;
    for (;;) {
      const qb = (await this.generationRepo())
        .createQueryBuilder('g')
        .innerJoinAndSelect('g.apiKey', 'k')
        .orderBy('g.createdAt', 'ASC')
        .addOrderBy('g.id', 'ASC')
        .limit(EXPORT_BATCH);
      this.inRange(qb, range);
      if (after) qb.andWhere('(g.createdAt > :at OR (g.createdAt = :at AND g.id > :afterId))', { at: after.createdAt, afterId: after.id });
      const batch = await qb.getMany();
      for (const g of batch) {
        yield {
          id: g.id,
          createdAt: g.createdAt,
          keyName: g.apiKey?.name ?? '',
          keyPrefix: g.apiKey?.prefix ?? '',
          model: g.model,
          kind: g.kind,
          sessionId: g.sessionId,
          status: g.status,
          errorCode: g.errorCode,
          prompt: g.prompt,
          response: g.response,
          promptTokens: g.promptTokens,
          completionTokens: g.completionTokens,
          creditsCharged: g.creditsCharged,
        };
      }
      if (batch.length < EXPORT_BATCH) return;
      const last = batch.at(-1)!;
      after = { createdAt: last.createdAt, id: last.id };
    }
  }

  private inRange<T extends object>(qb: SelectQueryBuilder<T>, range: TimeRange, apiKeyId?: string): SelectQueryBuilder<T> {
    qb.andWhere('g.createdAt >= :from AND g.createdAt < :to', { from: range.from, to: range.to });
    if (apiKeyId) qb.andWhere('g.apiKeyId = :scopeKey', { scopeKey: apiKeyId });
    return qb;
  }
}
