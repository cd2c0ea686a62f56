import { builder } from '../schema/builder.js';
import { SessionType, CreateSessionInput, SessionConnection } from '../schema/session.js';

builder.queryField('session', (t) =>
  t.field({
    type: SessionType,
    description: 'One of the caller\'s sessions with its messages (NOT_FOUND for sessions of other keys).',
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true, description: 'Session id.' }) },
    resolve: (_root, { id }, ctx) => ctx.services.sessions.get(ctx.principal!, String(id)),
  }),
);

builder.queryField('sessions', (t) =>
  t.field({
    type: SessionConnection,
    description: 'The caller\'s sessions, newest first.',
    authScopes: { authenticated: true },
    args: {
      first: t.arg.int({ required: false, defaultValue: 20, description: 'Page size, 1 to 100.' }),
      after: t.arg.string({ required: false, description: '`endCursor` of the previous page.' }),
    },
    resolve: (_root, { first, after }, ctx) => ctx.services.sessions.list(ctx.principal!, first ?? 20, after),
  }),
);

builder.mutationField('createSession', (t) =>
  t.field({
    type: SessionType,
    description: 'Starts a stored conversation. Its system prompt is fixed now (the default one if none is given).',
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: CreateSessionInput, required: true, description: 'Model, system prompt, options and title.' }) },
    resolve: (_root, { input }, ctx) => ctx.services.sessions.create(ctx.principal!, input),
  }),
);

builder.mutationField('setSessionSystemPrompt', (t) =>
  t.field({
    type: SessionType,
    description: 'Replaces the system prompt of one session (used from its next turn on).',
    authScopes: { authenticated: true },
    args: {
      id: t.arg.id({ required: true, description: 'Session id.' }),
      systemPrompt: t.arg.string({ required: false, description: 'The new system prompt; null removes it.' }),
    },
    resolve: (_root, { id, systemPrompt }, ctx) => ctx.services.sessions.setSystemPrompt(ctx.principal!, String(id), systemPrompt ?? null),
  }),
);

builder.mutationField('clearSession', (t) =>
  t.field({
    type: SessionType,
    description: 'Deletes the messages of a session and keeps the session (SESSION_BUSY while it is answering).',
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true, description: 'Session id.' }) },
    resolve: (_root, { id }, ctx) => ctx.services.sessions.clear(ctx.principal!, String(id)),
  }),
);

builder.mutationField('deleteSession', (t) =>
  t.boolean({
    description: 'Deletes a session and its messages (its usage-log rows stay). SESSION_BUSY while it is answering.',
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true, description: 'Session id.' }) },
    resolve: (_root, { id }, ctx) => ctx.services.sessions.delete(ctx.principal!, String(id)),
  }),
);
