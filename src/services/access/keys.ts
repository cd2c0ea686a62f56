import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager, Repository } from 'typeorm';
import type { GatewayDatabase } from '../db/database.js';
import type { ApiKey } from '../../entities/api-key.js';
import { API_KEY_ROLES, type ApiKeyRole } from '../../entities/api-key-role.js';
import { CreditLedger, MAX_CREDITS } from './credits.js';
import { countKeys, findActiveKey, findKey, insertKey, keyWithSecretExists, touchKey } from '../db/api-keys.js';
import { inTransaction } from '../db/transactions.js';
import { ErrorCode, GatewayError, badInput } from '../platform/errors.js';
import { InProcessKeyEventBus, type KeyEventBus } from './key-events.js';

/** Every secret starts with this, so leaked keys are recognisable (e.g. by secret scanners). */
export const KEY_PREFIX = 'llmgw_';
/**
 * Characters of the secret kept in clear (after `llmgw_`, which is not secret) for people to tell
 * keys apart in lists, logs and exports. Few on purpose: a chosen ADMIN_API_KEY may be only 24
 * characters long, and the prefix must not give a guesser a head start.
 */
const DISPLAY_SECRET_CHARS = 4;

/** The display prefix of a secret: `llmgw_` (when it has it) and DISPLAY_SECRET_CHARS characters. */
export const displayPrefix = (secret: string): string =>
  secret.startsWith(KEY_PREFIX) ? secret.slice(0, KEY_PREFIX.length + DISPLAY_SECRET_CHARS) : secret.slice(0, DISPLAY_SECRET_CHARS);

export const MAX_KEY_NAME_LENGTH = 200;
/** Largest value accepted for a rate limit. */
export const MAX_LIMIT = 1_000_000_000;
/** lastUsedAt is written at most this often per key (it is informative, not an audit trail). */
const TOUCH_INTERVAL_MS = 60_000;

/** A key's own rate limits; null = the configured default, 0 = unlimited. */
export interface KeyLimits {
  requestsPerMinute: number | null;
  tokensPerMinute: number | null;
  maxConcurrentStreams: number | null;
}

/** What the rest of the gateway knows about the caller: never the secret or its hash. */
export interface Principal {
  id: string;
  name: string;
  prefix: string;
  role: ApiKeyRole;
  /** The key's own rate limits as of authentication; absent = configured defaults. */
  limits?: KeyLimits;
}

export const hashSecret = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

/** A new secret: the recognisable prefix plus 256 random bits, base64url. */
export const generateSecret = (): string => KEY_PREFIX + randomBytes(32).toString('base64url');

export const limitsOf = (k: ApiKey): KeyLimits => ({
  requestsPerMinute: k.requestsPerMinute,
  tokensPerMinute: k.tokensPerMinute,
  maxConcurrentStreams: k.maxConcurrentStreams,
});

export const toPrincipal = (k: ApiKey): Principal => ({ id: k.id, name: k.name, prefix: k.prefix, role: k.role, limits: limitsOf(k) });

export interface CreatedKey {
  key: ApiKey;
  /** The only time the secret exists outside the client's hands. */
  secret: string;
}

export interface CreateKeyInput {
  name: string;
  role: ApiKeyRole;
  credits?: number | null;
  limits?: Partial<KeyLimits> | null;
  /** A chosen secret (ADMIN_API_KEY); otherwise one is generated. */
  secret?: string;
}

/** Fields to change; an absent field is left as it is, a null limit returns to the default. */
export interface UpdateKeyInput {
  name?: string | null;
  role?: ApiKeyRole | null;
  limits?: Partial<KeyLimits> | null;
}

export interface KeyPage {
  keys: ApiKey[];
  total: number;
}

const LIMIT_FIELDS = ['requestsPerMinute', 'tokensPerMinute', 'maxConcurrentStreams'] as const;

function validName(name: string): string {
  const trimmed = name.trim();
  if (!trimmed) throw badInput('name must not be empty.', { field: 'name' });
  if (trimmed.length > MAX_KEY_NAME_LENGTH) throw badInput(`name must be at most ${MAX_KEY_NAME_LENGTH} characters.`, { field: 'name' });
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) throw badInput('name must not contain control characters.', { field: 'name' });
  return trimmed;
}

function validRole(role: string): ApiKeyRole {
  if (!(API_KEY_ROLES as readonly string[]).includes(role)) throw badInput(`role must be one of ${API_KEY_ROLES.join(', ')}.`, { field: 'role' });
  return role as ApiKeyRole;
}

function validCredits(credits: number, field: string, min = 0): number {
  if (!Number.isInteger(credits) || credits < min || credits > MAX_CREDITS) {
    throw badInput(`${field} must be a whole number from ${min} to ${MAX_CREDITS}.`, { field });
  }
  return credits;
}

/** Only the limits present in `limits` (null kept: back to the default). */
function validLimits(limits: Partial<KeyLimits>): Partial<KeyLimits> {
  const out: Partial<KeyLimits> = {};
  for (const field of LIMIT_FIELDS) {
    if (!(field in limits) || limits[field] === undefined) continue;
    const value = limits[field];
    if (value !== null && (!Number.isInteger(value) || value < 0 || value > MAX_LIMIT)) {
      throw badInput(`limits.${field} must be a whole number from 0 (unlimited) to ${MAX_LIMIT}, or null for the default.`, { field: `limits.${field}` });
    }
    out[field] = value;
  }
  return out;
}

export class KeyService {
  private readonly ledger = new CreditLedger();
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly db: GatewayDatabase,
    private readonly defaultCredits: number,
    /** Where revocations are announced (to end streams and close sockets). */
    readonly events: KeyEventBus = new InProcessKeyEventBus(),
  ) {}

  /** TypeORM's repository (admin CRUD), loading TypeORM on first use. */
  private async repo(tx?: EntityManager): Promise<Repository<ApiKey>> {
    return (tx ?? (await this.db.orm())).getRepository<ApiKey>('ApiKey');
  }

  /** Creates a key and returns its secret once; only the sha256 and a display prefix are stored. */
  async create(input: CreateKeyInput): Promise<CreatedKey> {
    const secret = input.secret ?? generateSecret();
    const limits = validLimits(input.limits ?? {});
    const key = {
      id: randomUUID(),
      name: validName(input.name),
      role: validRole(input.role),
      prefix: displayPrefix(secret),
      secretHash: hashSecret(secret),
      credits: validCredits(input.credits ?? this.defaultCredits, 'credits'),
      requestsPerMinute: limits.requestsPerMinute ?? null,
      tokensPerMinute: limits.tokensPerMinute ?? null,
      maxConcurrentStreams: limits.maxConcurrentStreams ?? null,
      createdAt: new Date(),
      lastUsedAt: null,
      revokedAt: null,
    } as ApiKey;
    // Plain SQL: the admin key created on a first start should not load TypeORM.
    await this.db.sqlClient.transaction((tx) => insertKey(tx, key));
    return { key, secret };
  }

  /** Resolves a presented secret to its active key, or null. */
  async authenticate(secret: string | undefined | null): Promise<ApiKey | null> {
    if (!secret || secret.length > 256) return null;
    const presented = hashSecret(secret);
    // Looked up by the SHA-256 of the secret: what an attacker can time is the index lookup of a
    // hash they cannot aim, so comparing the found hash with itself again would add nothing.
    const key = await findActiveKey(this.db.sqlClient, { secretHash: presented });
    if (!key) return null;
    this.touch(key);
    return key;
  }

  /** The key if it exists and is not revoked (re-checked on every websocket operation). */
  async findActive(id: string): Promise<ApiKey | null> {
    const key = await findActiveKey(this.db.sqlClient, { id });
    if (key) this.touch(key);
    return key;
  }

  /** Keys, revoked ones included (plain SQL: asked at every start). */
  async count(): Promise<number> {
    return countKeys(this.db.sqlClient);
  }

  async findById(id: string): Promise<ApiKey | null> {
    return (await this.repo()).findOne({ where: { id } });
  }

  private async getOrFail(id: string, tx?: EntityManager): Promise<ApiKey> {
    const key = await (await this.repo(tx)).findOne({ where: { id } });
    if (!key) throw new GatewayError(ErrorCode.NOT_FOUND, `No API key with id "${id}".`, { id });
    return key;
  }

  /** Keys, newest first, `first` at a time from `offset`, with the total count. */
  async list(opts: { first: number; offset: number; includeRevoked: boolean; search?: string | null }): Promise<KeyPage> {
    if (!Number.isInteger(opts.first) || opts.first < 1 || opts.first > 500) throw badInput('first must be from 1 to 500.', { field: 'first' });
    if (!Number.isInteger(opts.offset) || opts.offset < 0) throw badInput('offset must not be negative.', { field: 'offset' });
    const search = opts.search?.trim();
    if (search && search.length > 200) throw badInput('search must be at most 200 characters.', { field: 'search' });
    const repo = await this.repo();
    const { IsNull, Raw } = await import('typeorm'); // loaded by this.repo()
    const base = opts.includeRevoked ? {} : { revokedAt: IsNull() };
    // Name or prefix containing the text, case-insensitive (LIKE wildcards in it match literally).
    const pattern = search ? Raw((col) => `LOWER(${col}) LIKE :pattern ESCAPE '\\'`, { pattern: `%${search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%` }) : undefined;
    const [keys, total] = await repo.findAndCount({
      where: pattern ? [{ ...base, name: pattern }, { ...base, prefix: pattern }] : base,
      order: { createdAt: 'DESC', id: 'ASC' },
      take: opts.first,
      skip: opts.offset,
    });
    return { keys, total };
  }

  /** Renames a key, changes its role or its rate limits. */
  async update(id: string, input: UpdateKeyInput): Promise<ApiKey> {
    const changes: Partial<ApiKey> = {};
    if (input.name !== undefined && input.name !== null) changes.name = validName(input.name);
    if (input.role !== undefined && input.role !== null) changes.role = validRole(input.role);
    Object.assign(changes, validLimits(input.limits ?? {}));
    return inTransaction(this.db, async (tx) => {
      const key = await this.getOrFail(id, tx);
      if (key.role === 'ADMIN' && changes.role === 'USER' && !key.revokedAt) await this.keepOneAdmin(tx, 'demote');
      if (Object.keys(changes).length) await tx.update('ApiKey', { id }, changes);
      return this.getOrFail(id, tx);
    });
  }

  /**
   * Revokes a key for good and announces it, so its running streams end and its connections close.
   * Revoking a revoked key changes nothing. The last active admin key cannot be revoked.
   */
  async revoke(id: string): Promise<ApiKey> {
    const { key, changed } = await inTransaction(this.db, async (tx) => {
      const current = await this.getOrFail(id, tx);
      if (current.revokedAt) return { key: current, changed: false };
      if (current.role === 'ADMIN') await this.keepOneAdmin(tx, 'revoke');
      const { IsNull } = await import('typeorm'); // loaded by inTransaction
      await tx.update('ApiKey', { id, revokedAt: IsNull() }, { revokedAt: new Date() });
      return { key: await this.getOrFail(id, tx), changed: true };
    });
    if (changed) await this.events.publish({ type: 'revoked', keyId: key.id, prefix: key.prefix });
    return key;
  }

  /** Adds credits (or takes them away with a negative amount) atomically; the balance stays within 0..MAX_CREDITS. */
  async addCredits(id: string, amount: number): Promise<ApiKey> {
    if (!Number.isInteger(amount) || amount === 0 || Math.abs(amount) > MAX_CREDITS) {
      throw badInput(`amount must be a non-zero whole number from -${MAX_CREDITS} to ${MAX_CREDITS}.`, { field: 'amount' });
    }
    // Plain SQL: the conditional UPDATE is the ledger's, the same one reservations race with.
    return this.db.sqlClient.transaction(async (tx) => {
      const key = await findKey(tx, id);
      if (!key) throw new GatewayError(ErrorCode.NOT_FOUND, `No API key with id "${id}".`, { id });
      if (!(await this.ledger.adjust(tx, id, amount))) {
        throw badInput(
          amount < 0
            ? `The key has ${key.credits} credits; ${-amount} cannot be taken away.`
            : `The balance would exceed ${MAX_CREDITS} credits.`,
          { field: 'amount', credits: key.credits },
        );
      }
      return (await findKey(tx, id))!;
    });
  }

  /** Refuses to leave the gateway without an active admin key. */
  private async keepOneAdmin(tx: EntityManager, action: 'revoke' | 'demote'): Promise<void> {
    // PostgreSQL: lock the active admin rows so two concurrent revocations cannot both pass the check.
    const lock = tx.connection.options.type === 'postgres' ? ' FOR UPDATE' : '';
    const rows: unknown[] = await tx.query(`SELECT id FROM api_keys WHERE role = 'ADMIN' AND revoked_at IS NULL${lock}`);
    if (rows.length <= 1) {
      throw new GatewayError(ErrorCode.FORBIDDEN, `Cannot ${action} the last active admin key; create another admin key first.`);
    }
  }

  /** Records that a key was used, at most once a minute per key; best effort. */
  private touch(key: ApiKey): void {
    const now = Date.now();
    const last = Math.max(this.touched.get(key.id) ?? 0, key.lastUsedAt?.getTime() ?? 0);
    if (now - last < TOUCH_INTERVAL_MS) return;
    this.touched.set(key.id, now);
    Promise.resolve()
      .then(() => this.db.sqlClient.transaction((tx) => touchKey(tx, key.id, new Date(now))))
      .catch(() => {
        // The database may be closing; lastUsedAt is informative only.
      });
  }

  /**
   * Makes sure an admin can get in: registers ADMIN_API_KEY when configured, otherwise creates an
   * admin key on an empty database. Returns the secret only when it was generated here.
   */
  async bootstrapAdmin(configuredSecret: string | undefined): Promise<string | undefined> {
    if (configuredSecret) {
      // Plain SQL: this runs at every start, which should not load TypeORM (only creating a key does).
      if (!(await keyWithSecretExists(this.db.sqlClient, hashSecret(configuredSecret)))) await this.create({ name: 'admin (ADMIN_API_KEY)', role: 'ADMIN', secret: configuredSecret });
      return undefined;
    }
    if ((await this.count()) > 0) return undefined;
    const { secret } = await this.create({ name: 'admin (first start)', role: 'ADMIN' });
    return secret;
  }
}
