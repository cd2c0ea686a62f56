import { Table, TableColumn, TableIndex } from 'typeorm';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { dialect } from './1763900000000-initial.js';

/**
 * Scale-out: which Ollama host answered each generation and which gateway instance ran it, and
 * leases, so exactly one instance at a time runs a job such as a host's idle reaper.
 */
export class HostPool1764000000000 implements MigrationInterface {
  name = 'HostPool1764000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const c = dialect(queryRunner);
    await queryRunner.addColumns('generations', [new TableColumn(c.varchar('host', 300, true)), new TableColumn(c.varchar('instance_id', 64, true))]);
    await queryRunner.createIndex('generations', new TableIndex({ name: 'IDX_generations_status_host', columnNames: ['status', 'host'] }));
    await queryRunner.createTable(
      new Table({
        name: 'leases',
        columns: [{ ...c.varchar('name', 200), isPrimary: true }, c.varchar('owner', 64), c.timestamp('expires_at')],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('leases', true);
    await queryRunner.dropIndex('generations', 'IDX_generations_status_host');
    await queryRunner.dropColumn('generations', 'instance_id');
    await queryRunner.dropColumn('generations', 'host');
  }
}
