import type { Principal } from '../services/keys.js';
import { builder } from './builder.js';

export const ApiKeyRole = builder.enumType('ApiKeyRole', {
  description: 'What a key may do.',
  values: {
    ADMIN: { description: 'Everything, including managing keys and models.' },
    USER: { description: 'Generate text and read its own sessions and usage.' },
  } as const,
});

export const Viewer = builder.objectRef<Principal>('Viewer').implement({
  description: 'The API key making the request. The secret itself is never shown again after creation.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Identifier of the key.' }),
    name: t.exposeString('name', { description: 'Name given to the key when it was created.' }),
    prefix: t.exposeString('prefix', { description: 'First characters of the secret, to tell keys apart.' }),
    role: t.field({ type: ApiKeyRole, description: 'What the key may do.', resolve: (p) => p.role }),
  }),
});
