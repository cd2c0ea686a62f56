import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { IsNull, type DataSource, type Repository } from 'typeorm';
import { ApiKey, type ApiKeyRole } from '../entities/api-key.js';

/** Every secret starts with this, so leaked keys are recognisable (e.g. by secret scanners). */
export const KEY_PREFIX = 'llmgw_';
/** Characters of the secret kept in clear for people to tell keys apart. */
const DISPLAY_PREFIX_LENGTH = KEY_PREFIX.length + 8;

/** What the rest of the gateway knows about the caller: never the secret or its hash. */
export interface Principal {
  id: string;
  name: string;
  prefix: string;
  role: ApiKeyRole;
}

export const hashSecret = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

/** A new secret: the recognisable prefix plus 256 random bits, base64url. */
export const generateSecret = (): string => KEY_PREFIX + randomBytes(32).toString('base64url');

export const toPrincipal = (k: ApiKey): Principal => ({ id: k.id, name: k.name, prefix: k.prefix, role: k.role });

export interface CreatedKey {
  key: ApiKey;
  /** The only time the secret exists outside the client's hands. */
  secret: string;
}

export class KeyService {
  private readonly repo: Repository<ApiKey>;

  constructor(
    private readonly db: DataSource,
    private readonly defaultCredits: number,
  ) {
    this.repo = db.getRepository(ApiKey);
  }

  /** Creates a key and returns its secret once; only the sha256 and a display prefix are stored. */
  async create(input: { name: string; role: ApiKeyRole; credits?: number; secret?: string }): Promise<CreatedKey> {
    const secret = input.secret ?? generateSecret();
    const key = this.repo.create({
      id: randomUUID(),
      name: input.name,
      role: input.role,
      prefix: secret.slice(0, DISPLAY_PREFIX_LENGTH),
      secretHash: hashSecret(secret),
      credits: input.credits ?? this.defaultCredits,
      requestsPerMinute: null,
      tokensPerMinute: null,
      maxConcurrentStreams: null,
      lastUsedAt: null,
      revokedAt: null,
    });
    await this.repo.insert(key);
    return { key, secret };
  }

  /** Resolves a presented secret to its active key, or null. */
  async authenticate(secret: string | undefined | null): Promise<ApiKey | null> {
    if (!secret || secret.length > 256) return null;
    const presented = hashSecret(secret);
    const key = await this.repo.findOne({ where: { secretHash: presented, revokedAt: IsNull() } });
    if (!key) return null;
    // The lookup is by hash; the constant-time compare keeps the check itself free of timing signals.
    if (!timingSafeEqual(Buffer.from(key.secretHash, 'hex'), Buffer.from(presented, 'hex'))) return null;
    return key;
  }

  async count(): Promise<number> {
    return this.repo.count();
  }

  async findById(id: string): Promise<ApiKey | null> {
    return this.repo.findOne({ where: { id } });
  }

  /**
   * Makes sure an admin can get in: registers ADMIN_API_KEY when configured, otherwise creates an
   * admin key on an empty database. Returns the secret only when it was generated here.
   */
  async bootstrapAdmin(configuredSecret: string | undefined): Promise<string | undefined> {
    if (configuredSecret) {
      const existing = await this.repo.findOne({ where: { secretHash: hashSecret(configuredSecret) } });
      if (!existing) await this.create({ name: 'admin (ADMIN_API_KEY)', role: 'ADMIN', secret: configuredSecret });
      return undefined;
    }
    if ((await this.count()) > 0) return undefined;
    const { secret } = await this.create({ name: 'admin (first start)', role: 'ADMIN' });
    return secret;
  }
}
