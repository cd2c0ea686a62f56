// Side-effect imports register every type and root field on the builder.
import './health.js';
import './api-key.js';
import './generation.js';
import './usage.js';
import './session.js';
import './settings.js';
import './model.js';
import './live.js';
import './embeddings.js';
import '../resolvers/health.js';
import '../resolvers/keys.js';
import '../resolvers/generation.js';
import '../resolvers/usage.js';
import '../resolvers/sessions.js';
import '../resolvers/chat.js';
import '../resolvers/models.js';
import '../resolvers/settings.js';
import '../resolvers/live.js';
import '../resolvers/embeddings.js';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from './builder.js';

export const schema = builder.toSchema();

/** The SDL committed as schema.graphql (sorted, so the diff shows real changes only). */
export const printSchemaSdl = (): string => `${printSchema(lexicographicSortSchema(schema))}\n`;
