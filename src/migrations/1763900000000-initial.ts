import { Table } from 'typeorm';
import type { MigrationInterface, QueryRunner, TableColumnOptions } from 'typeorm';

/** Column helpers for the few spots where SQLite and PostgreSQL need different SQL. */
export function dialect(queryRunner: QueryRunner) {
  const postgres = queryRunner.connection.driver.options.type === 'postgres';
  const id = (name: string, nullable = false): TableColumnOptions => ({ name, type: 'varchar', length: '36', isNullable: nullable });
  const varchar = (name: string, length: number, nullable = false): TableColumnOptions => ({
    name,
    type: 'varchar',
    length: String(length),
    isNullable: nullable,
  });
  const integer = (name: string, opts: { nullable?: boolean; default?: number } = {}): TableColumnOptions => ({
    name,
    type: 'integer',
    isNullable: opts.nullable ?? false,
    default: opts.default === undefined ? undefined : String(opts.default),
  });
  const text = (name: string, opts: { nullable?: boolean; default?: string } = {}): TableColumnOptions => ({
    name,
    type: 'text',
    isNullable: opts.nullable ?? false,
    default: opts.default === undefined ? undefined : `'${opts.default.replaceAll("'", "''")}'`,
  });
  const boolean = (name: string, defaultValue?: boolean): TableColumnOptions => ({
    name,
    type: 'boolean',
    isNullable: false,
    default: defaultValue === undefined ? undefined : postgres ? String(defaultValue) : defaultValue ? '1' : '0',
  });
  const double = (name: string): TableColumnOptions => ({ name, type: 'double precision', isNullable: true });
  // timestamptz keeps instants independent of the server and Node time zones (see services/db/orm.ts);
  // on SQLite TypeORM stores `datetime` as UTC text with milliseconds.
  const timestamp = (name: string, opts: { nullable?: boolean; defaultNow?: boolean } = {}): TableColumnOptions => ({
    name,
    type: postgres ? 'timestamptz' : 'datetime',
    isNullable: opts.nullable ?? false,
    default: opts.defaultNow ? (postgres ? 'now()' : "datetime('now')") : undefined,
  });
  return { id, varchar, integer, text, boolean, double, timestamp };
}

export class Initial1763900000000 implements MigrationInterface {
  name = 'Initial1763900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const c = dialect(queryRunner);

    await queryRunner.createTable(
      new Table({
        name: 'api_keys',
        columns: [
          { ...c.id('id'), isPrimary: true },
          c.varchar('name', 200),
          c.varchar('prefix', 32),
          c.varchar('secret_hash', 64),
          c.varchar('role', 16),
          c.integer('credits', { default: 0 }),
          c.integer('requests_per_minute', { nullable: true }),
          c.integer('tokens_per_minute', { nullable: true }),
          c.integer('max_concurrent_streams', { nullable: true }),
          c.timestamp('created_at', { defaultNow: true }),
          c.timestamp('last_used_at', { nullable: true }),
          c.timestamp('revoked_at', { nullable: true }),
        ],
        indices: [{ name: 'UQ_api_keys_secret_hash', columnNames: ['secret_hash'], isUnique: true }],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'model_entries',
        columns: [
          { ...c.id('id'), isPrimary: true },
          c.varchar('name', 200),
          c.varchar('alias', 200, true),
          c.text('description', { nullable: true }),
          c.boolean('enabled', true),
          c.boolean('is_default', false),
          c.double('prompt_price_per_1k'),
          c.double('completion_price_per_1k'),
          c.integer('inactivity_threshold_seconds', { nullable: true }),
          c.timestamp('created_at', { defaultNow: true }),
          c.timestamp('updated_at', { defaultNow: true }),
        ],
        indices: [
          { name: 'UQ_model_entries_name', columnNames: ['name'], isUnique: true },
          { name: 'UQ_model_entries_alias', columnNames: ['alias'], isUnique: true },
        ],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'sessions',
        columns: [
          { ...c.id('id'), isPrimary: true },
          c.id('api_key_id'),
          c.varchar('model', 200),
          c.text('system_prompt', { nullable: true }),
          c.text('options', { nullable: true }),
          c.varchar('title', 200, true),
          c.timestamp('created_at', { defaultNow: true }),
          c.timestamp('updated_at', { defaultNow: true }),
        ],
        foreignKeys: [
          {
            name: 'FK_sessions_api_key_id',
            columnNames: ['api_key_id'],
            referencedTableName: 'api_keys',
            referencedColumnNames: ['id'],
            onDelete: 'CASCADE',
          },
        ],
        indices: [{ name: 'IDX_sessions_api_key_id_created_at', columnNames: ['api_key_id', 'created_at'] }],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'messages',
        columns: [
          { ...c.id('id'), isPrimary: true },
          c.id('session_id'),
          c.integer('seq'),
          c.varchar('role', 16),
          c.text('content', { default: '' }),
          c.text('images', { nullable: true }),
          c.integer('prompt_tokens', { nullable: true }),
          c.integer('completion_tokens', { nullable: true }),
          c.varchar('status', 16),
          c.varchar('error_code', 64, true),
          c.id('generation_id', true),
          c.timestamp('created_at', { defaultNow: true }),
          c.timestamp('updated_at', { defaultNow: true }),
        ],
        foreignKeys: [
          {
            name: 'FK_messages_session_id',
            columnNames: ['session_id'],
            referencedTableName: 'sessions',
            referencedColumnNames: ['id'],
            onDelete: 'CASCADE',
          },
        ],
        indices: [{ name: 'UQ_messages_session_id_seq', columnNames: ['session_id', 'seq'], isUnique: true }],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'generations',
        columns: [
          { ...c.id('id'), isPrimary: true },
          c.id('api_key_id'),
          c.id('session_id', true),
          c.varchar('model', 200),
          c.varchar('kind', 16),
          c.boolean('streamed'),
          c.text('prompt'),
          c.text('messages', { nullable: true }),
          c.text('response', { default: '' }),
          c.integer('prompt_tokens', { default: 0 }),
          c.integer('completion_tokens', { default: 0 }),
          c.integer('credits_reserved', { default: 0 }),
          c.integer('credits_charged', { default: 0 }),
          c.varchar('status', 16),
          c.varchar('error_code', 64, true),
          c.varchar('done_reason', 32, true),
          c.varchar('request_id', 64, true),
          c.integer('first_token_ms', { nullable: true }),
          c.integer('total_duration_ms', { nullable: true }),
          c.timestamp('created_at', { defaultNow: true }),
          c.timestamp('finished_at', { nullable: true }),
        ],
        foreignKeys: [
          {
            name: 'FK_generations_api_key_id',
            columnNames: ['api_key_id'],
            referencedTableName: 'api_keys',
            referencedColumnNames: ['id'],
            onDelete: 'NO ACTION',
          },
          {
            name: 'FK_generations_session_id',
            columnNames: ['session_id'],
            referencedTableName: 'sessions',
            referencedColumnNames: ['id'],
            onDelete: 'SET NULL',
          },
        ],
        indices: [
          { name: 'IDX_generations_api_key_id_created_at', columnNames: ['api_key_id', 'created_at'] },
          { name: 'IDX_generations_created_at', columnNames: ['created_at'] },
          { name: 'IDX_generations_status', columnNames: ['status'] },
          { name: 'IDX_generations_session_id', columnNames: ['session_id'] },
        ],
      }),
    );

    await queryRunner.createTable(
      new Table({
        name: 'settings',
        columns: [
          { ...c.varchar('key', 100), isPrimary: true },
          c.text('value', { nullable: true }),
          c.timestamp('updated_at', { defaultNow: true }),
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['settings', 'generations', 'messages', 'sessions', 'model_entries', 'api_keys']) {
      await queryRunner.dropTable(table, true, true, true);
    }
  }
}
