import { TableColumn } from 'typeorm';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { dialect } from './1763900000000-initial.js';

/**
 * What today's models do: reasoning text and tool calls stored with the usage row and with session
 * messages, tool answers (role `tool`, the tool's name and call id) in sessions, and a system
 * prompt per catalog entry.
 */
export class ModernOllama1766000000000 implements MigrationInterface {
  name = 'ModernOllama1766000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const c = dialect(queryRunner);
    await queryRunner.addColumns('generations', [new TableColumn(c.text('thinking', { nullable: true })), new TableColumn(c.text('tool_calls', { nullable: true }))]);
    await queryRunner.addColumns('messages', [
      new TableColumn(c.text('thinking', { nullable: true })),
      new TableColumn(c.text('tool_calls', { nullable: true })),
      new TableColumn(c.varchar('tool_name', 128, true)),
      new TableColumn(c.varchar('tool_call_id', 128, true)),
    ]);
    await queryRunner.addColumn('model_entries', new TableColumn(c.text('system_prompt', { nullable: true })));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumn('model_entries', 'system_prompt');
    for (const column of ['tool_call_id', 'tool_name', 'tool_calls', 'thinking']) await queryRunner.dropColumn('messages', column);
    for (const column of ['tool_calls', 'thinking']) await queryRunner.dropColumn('generations', column);
  }
}
