/**
 * The names of the migrations in all.ts, oldest first, as TypeORM records them in the
 * `migrations` table. Importable without TypeORM: the gateway compares them with that table at
 * start (services/db/migration-state.ts) and loads TypeORM only when one is pending.
 * test/unit/migration-names.test.ts fails when this list and all.ts disagree.
 */
export const MIGRATION_NAMES: readonly string[] = ['Initial1763900000000', 'HostPool1764000000000', 'ShortKeyPrefix1765000000000', 'ModernOllama1766000000000'];
