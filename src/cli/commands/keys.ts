import { type Command, Option } from 'commander';
import type { GatewayDatabase } from '../../services/db/database.js';
import type { ApiKey } from '../../entities/api-key.js';
import { API_KEY_ROLES, type ApiKeyRole } from '../../entities/api-key-role.js';
import { KeyService } from '../../services/access/keys.js';
import { CliError, type CliIO, line, table, wholeNumber, withDatabase } from '../io.js';

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A key by its id or its display prefix (`llmgw_` + 8 characters, as `keys list` shows it). */
export async function findKey(db: GatewayDatabase, idOrPrefix: string): Promise<ApiKey> {
  const repo = (await db.orm()).getRepository<ApiKey>('ApiKey');
  const matches = ID.test(idOrPrefix) ? await repo.find({ where: { id: idOrPrefix.toLowerCase() } }) : await repo.find({ where: { prefix: idOrPrefix } });
  if (matches.length === 0) throw new CliError(`No API key with id or prefix "${idOrPrefix}" (see \`keys list --all\`).`);
  if (matches.length > 1) throw new CliError(`${matches.length} keys share the prefix "${idOrPrefix}"; give the key's id instead.`);
  return matches[0];
}

const day = (d: Date | null) => (d ? d.toISOString().replace(/\.\d+Z$/, 'Z') : '-');

const describe = (k: ApiKey) => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  role: k.role,
  credits: k.credits,
  limits: { requestsPerMinute: k.requestsPerMinute, tokensPerMinute: k.tokensPerMinute, maxConcurrentStreams: k.maxConcurrentStreams },
  createdAt: k.createdAt.toISOString(),
  lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
  revokedAt: k.revokedAt?.toISOString() ?? null,
});

export function keysCommand(program: Command, io: CliIO): void {
  const keys = program.command('keys').description('create, list and revoke API keys');

  keys
    .command('create')
    .description('create an API key and print its secret (shown once: only its SHA-256 is stored)')
    .requiredOption('-n, --name <name>', 'who or what the key is for')
    .addOption(new Option('-r, --role <role>', 'ADMIN manages keys, models and settings').choices(API_KEY_ROLES).default('USER'))
    .option('-c, --credits <n>', 'starting credits (default: DEFAULT_CREDITS)', wholeNumber('--credits', 0))
    .option('--requests-per-minute <n>', 'own request limit (0 = unlimited; default: the configured limit)', wholeNumber('--requests-per-minute', 0))
    .option('--tokens-per-minute <n>', 'own token limit (0 = unlimited)', wholeNumber('--tokens-per-minute', 0))
    .option('--max-concurrent-streams <n>', 'own limit on generations at once (0 = unlimited)', wholeNumber('--max-concurrent-streams', 0))
    .option('--json', 'print the key and its secret as JSON')
    .action(async (opts: { name: string; role: ApiKeyRole; credits?: number; requestsPerMinute?: number; tokensPerMinute?: number; maxConcurrentStreams?: number; json?: boolean }) => {
      await withDatabase(io, async (db, config) => {
        const { key, secret } = await new KeyService(db, config.defaultCredits).create({
          name: opts.name,
          role: opts.role,
          credits: opts.credits,
          limits: { requestsPerMinute: opts.requestsPerMinute, tokensPerMinute: opts.tokensPerMinute, maxConcurrentStreams: opts.maxConcurrentStreams },
        });
        if (opts.json) return line(io.out, JSON.stringify({ ...describe(key), secret }));
        line(io.err, `Created ${key.role} key "${key.name}" (id ${key.id}) with ${key.credits} credits. Its secret, shown only now:`);
        line(io.out, secret);
      });
    });

  keys
    .command('list')
    .description('list API keys, newest first')
    .option('-a, --all', 'include revoked keys')
    .option('--json', 'print JSON lines, one key per line')
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      await withDatabase(io, async (db, config) => {
        const service = new KeyService(db, config.defaultCredits);
        const all: ApiKey[] = [];
        for (let offset = 0; ; offset += 500) {
          const page = await service.list({ first: 500, offset, includeRevoked: Boolean(opts.all) });
          all.push(...page.keys);
          if (all.length >= page.total || page.keys.length === 0) break;
        }
        if (opts.json) return all.forEach((k) => line(io.out, JSON.stringify(describe(k))));
        if (all.length === 0) return line(io.err, opts.all ? 'No API keys.' : 'No active API keys (--all shows revoked ones).');
        const rows = [['ID', 'PREFIX', 'ROLE', 'CREDITS', 'CREATED', 'LAST USED', 'REVOKED', 'NAME']];
        for (const k of all) rows.push([k.id, k.prefix, k.role, String(k.credits), day(k.createdAt), day(k.lastUsedAt), day(k.revokedAt), k.name]);
        line(io.out, table(rows));
      });
    });

  keys
    .command('revoke')
    .description('revoke a key for good; a running gateway refuses it from its next request')
    .argument('<key>', 'the key id or its display prefix (llmgw_xxxxxxxx)')
    .action(async (idOrPrefix: string) => {
      await withDatabase(io, async (db, config) => {
        const key = await findKey(db, idOrPrefix);
        if (key.revokedAt) return line(io.err, `Key ${key.prefix} ("${key.name}") was already revoked at ${key.revokedAt.toISOString()}.`);
        const revoked = await new KeyService(db, config.defaultCredits).revoke(key.id);
        line(io.out, `Revoked key ${revoked.prefix} ("${revoked.name}", id ${revoked.id}).`);
      });
    });
}

export function creditsCommand(program: Command, io: CliIO): void {
  const credits = program.command('credits').description("change a key's credits");
  credits
    .command('add')
    .description('add credits to a key (a negative amount takes credits away, never below 0)')
    .argument('<key>', 'the key id or its display prefix (llmgw_xxxxxxxx)')
    .argument('<amount>', 'whole number of credits, e.g. 500 or -100', wholeNumber('amount'))
    .action(async (idOrPrefix: string, amount: number) => {
      await withDatabase(io, async (db, config) => {
        const key = await findKey(db, idOrPrefix);
        const updated = await new KeyService(db, config.defaultCredits).addCredits(key.id, amount);
        line(io.out, `Key ${updated.prefix} ("${updated.name}") now has ${updated.credits} credits (${amount >= 0 ? '+' : ''}${amount}).`);
      });
    });
}
