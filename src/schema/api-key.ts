import type { ApiKey as ApiKeyEntity } from '../entities/api-key.js';
import { MAX_CREDITS } from '../services/access/credits.js';
import { type CreatedKey, type KeyLimits, type KeyPage, MAX_KEY_NAME_LENGTH, MAX_LIMIT, limitsOf } from '../services/access/keys.js';
import type { EffectiveLimits } from '../services/access/rate-limit.js';
import { builder } from './builder.js';

export const ApiKeyRole = builder.enumType('ApiKeyRole', {
  description: 'What a key may do.',
  values: {
    ADMIN: { description: 'Everything, including managing keys and models.' },
    USER: { description: 'Generate text and read its own sessions and usage.' },
  } as const,
});

export const RateLimits = builder.objectRef<EffectiveLimits>('RateLimits').implement({
  description:
    'Rate limits in force for a key: its own values where set, else the configured defaults. 0 means unlimited. ' +
    'They apply to generation requests (generate and chat, streamed or not); a request over a limit fails with RATE_LIMITED and `retryAfterSeconds`.',
  fields: (t) => ({
    requestsPerMinute: t.exposeInt('requestsPerMinute', { description: 'Generation requests the key may start per minute (refused requests count too).' }),
    tokensPerMinute: t.exposeInt('tokensPerMinute', {
      description: 'Prompt plus completion tokens per minute. Counted when each request ends; new requests are refused once the minute\'s tokens are used up.',
    }),
    maxConcurrentStreams: t.exposeInt('maxConcurrentStreams', { description: 'Generations the key may run at the same time, streamed or not.' }),
  }),
});

export const RateLimitOverrides = builder.objectRef<KeyLimits>('RateLimitOverrides').implement({
  description: 'The limits set on the key itself. null means the key follows the configured default; 0 means unlimited.',
  fields: (t) => ({
    requestsPerMinute: t.exposeInt('requestsPerMinute', { nullable: true, description: 'Own requests-per-minute limit, or null for the default.' }),
    tokensPerMinute: t.exposeInt('tokensPerMinute', { nullable: true, description: 'Own tokens-per-minute limit, or null for the default.' }),
    maxConcurrentStreams: t.exposeInt('maxConcurrentStreams', { nullable: true, description: 'Own concurrent-generations limit, or null for the default.' }),
  }),
});

export const RateLimitsInput = builder.inputType('RateLimitsInput', {
  description: `Rate limits for a key. Each value is a whole number from 0 (unlimited) to ${MAX_LIMIT}; null means "use the configured default"; a field left out is not changed.`,
  fields: (t) => ({
    requestsPerMinute: t.int({ required: false, description: 'Generation requests per minute.' }),
    tokensPerMinute: t.int({ required: false, description: 'Prompt plus completion tokens per minute.' }),
    maxConcurrentStreams: t.int({ required: false, description: 'Generations running at the same time.' }),
  }),
});

type KeyFields = PothosSchemaTypes.ObjectFieldBuilder<typeof builder.$inferSchemaTypes, ApiKeyEntity>;

/** Fields shared by `Viewer` (the caller) and `ApiKey` (the admin view of any key). */
const keyFields = (t: KeyFields) => ({
  id: t.exposeID('id', { description: 'Identifier of the key.' }),
  name: t.exposeString('name', { description: 'Name given to the key.' }),
  prefix: t.exposeString('prefix', { description: 'First characters of the secret, to tell keys apart. Not enough to use the key.' }),
  role: t.field({ type: ApiKeyRole, description: 'What the key may do.', resolve: (k) => k.role }),
  credits: t.exposeInt('credits', {
    description: 'Credits left. Each generation reserves its worst-case cost up front and is settled to the real cost when it ends, so running requests hold some credits back.',
  }),
  limits: t.field({
    type: RateLimits,
    description: 'Rate limits in force for the key.',
    resolve: (k, _args, ctx) => ctx.services.rateLimits.effective(limitsOf(k)),
  }),
  customLimits: t.field({ type: RateLimitOverrides, description: 'Limits set on the key itself (null fields follow the defaults).', resolve: (k) => limitsOf(k) }),
  createdAt: t.field({ type: 'DateTime', description: 'When the key was created.', resolve: (k) => k.createdAt }),
  lastUsedAt: t.field({
    type: 'DateTime',
    nullable: true,
    description: 'When the key was last used (updated at most once a minute), or null if never.',
    resolve: (k) => k.lastUsedAt,
  }),
});

export const Viewer = builder.objectRef<ApiKeyEntity>('Viewer').implement({
  description: 'The API key making the request. The secret itself is never shown again after creation.',
  fields: (t) => keyFields(t),
});

export const ApiKey = builder.objectRef<ApiKeyEntity>('ApiKey').implement({
  description: 'An API key, as admins see it. Only a hash of the secret is stored; the secret cannot be shown again.',
  fields: (t) => ({
    ...keyFields(t),
    revokedAt: t.field({ type: 'DateTime', nullable: true, description: 'When the key was revoked, or null while it works.', resolve: (k) => k.revokedAt }),
    active: t.boolean({ description: 'False once the key has been revoked.', resolve: (k) => k.revokedAt === null }),
  }),
});

export const CreatedApiKey = builder.objectRef<CreatedKey>('CreatedApiKey').implement({
  description: 'A new key and its secret. The secret is shown this once only: store it now.',
  fields: (t) => ({
    key: t.field({ type: ApiKey, description: 'The new key.', resolve: (c) => c.key }),
    secret: t.exposeString('secret', { description: 'The secret to send as `x-api-key` or `Authorization: Bearer`. Never shown again.' }),
  }),
});

export const ApiKeyPage = builder.objectRef<KeyPage & { offset: number }>('ApiKeyPage').implement({
  description: 'One page of API keys, newest first.',
  fields: (t) => ({
    nodes: t.field({ type: [ApiKey], description: 'The keys on this page.', resolve: (p) => p.keys }),
    totalCount: t.exposeInt('total', { description: 'Keys matching the filter, on all pages.' }),
    hasMore: t.boolean({ description: 'True when more keys follow this page.', resolve: (p) => p.offset + p.keys.length < p.total }),
  }),
});

export const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  description: 'A new API key.',
  fields: (t) => ({
    name: t.string({ required: true, description: `A name people recognise, 1 to ${MAX_KEY_NAME_LENGTH} characters.` }),
    role: t.field({ type: ApiKeyRole, required: false, defaultValue: 'USER', description: 'What the key may do (default USER).' }),
    credits: t.int({ required: false, description: `Starting credits, 0 to ${MAX_CREDITS}; default DEFAULT_CREDITS.` }),
    limits: t.field({ type: RateLimitsInput, required: false, description: 'Rate limits; anything left out follows the configured defaults.' }),
  }),
});

export const UpdateApiKeyInput = builder.inputType('UpdateApiKeyInput', {
  description: 'Changes to an API key; fields left out are not changed. Credits change only through addCredits.',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The key to change.' }),
    name: t.string({ required: false, description: `New name, 1 to ${MAX_KEY_NAME_LENGTH} characters.` }),
    role: t.field({ type: ApiKeyRole, required: false, description: 'New role. The last active admin key cannot be demoted.' }),
    limits: t.field({ type: RateLimitsInput, required: false, description: 'New rate limits; null for a field returns it to the default.' }),
  }),
});

export const AddCreditsInput = builder.inputType('AddCreditsInput', {
  description: 'Credits to give to (or take from) a key.',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The key.' }),
    amount: t.int({
      required: true,
      description: `Credits to add, a non-zero whole number; negative takes credits away but never below 0. The balance is capped at ${MAX_CREDITS}.`,
    }),
  }),
});
