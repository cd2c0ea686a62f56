// Apart from the entity (api-key.ts), whose decorators import TypeORM: role checks run at start
// and on every key mutation, before TypeORM is loaded (services/db/database.ts).
export const API_KEY_ROLES = ['ADMIN', 'USER'] as const;
export type ApiKeyRole = (typeof API_KEY_ROLES)[number];
