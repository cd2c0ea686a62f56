import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Display prefixes of keys created before they were shortened (security round 2): `llmgw_` and 4
 * characters of the secret, or 4 characters of a chosen secret (ADMIN_API_KEY). The old ones
 * held 8 characters after `llmgw_`, or the first 14 of a chosen secret (58% of a 24-character
 * one). Data only; `down` cannot give back what was cut and leaves the short prefixes.
 */
export class ShortKeyPrefix1765000000000 implements MigrationInterface {
  name = 'ShortKeyPrefix1765000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`UPDATE api_keys SET prefix = substr(prefix, 1, 10) WHERE substr(prefix, 1, 6) = 'llmgw_'`);
    await queryRunner.query(`UPDATE api_keys SET prefix = substr(prefix, 1, 4) WHERE substr(prefix, 1, 6) <> 'llmgw_'`);
  }

  async down(): Promise<void> {}
}
