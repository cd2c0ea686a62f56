import type { EmbedResult as EmbedResultShape } from '../services/generation/embeddings/types.js';
import { MAX_EMBED_DIMENSIONS } from '../services/generation/embeddings/embedding-service.js';
import { builder } from './builder.js';

export const EmbedInput = builder.inputType('EmbedInput', {
  description: 'Texts to turn into embedding vectors, with a model that has the `embedding` capability.',
  fields: (t) => ({
    model: t.string({ required: true, description: 'Ollama model name or catalog alias, e.g. "nomic-embed-text".' }),
    input: t.stringList({
      required: true,
      description: 'The texts, one vector each, in the same order. At least one, at most MAX_EMBED_INPUTS (default 256); MAX_PROMPT_CHARS characters together.',
    }),
    dimensions: t.int({
      required: false,
      description: `Size of the vectors, 1 to ${MAX_EMBED_DIMENSIONS}, for models trained to be cut short (Matryoshka); Ollama keeps the first values and normalises again. Unset, or above the model\'s size: the full vector.`,
    }),
    truncate: t.boolean({
      required: false,
      description: "Cut texts longer than the model's context instead of failing (Ollama's default: true). With false, a text that does not fit is refused.",
    }),
  }),
});

export const EmbedUsage = builder.objectRef<EmbedResultShape['usage']>('EmbedUsage').implement({
  description: 'Token counts of an embeddings request, as Ollama reported them.',
  fields: (t) => ({
    promptTokens: t.exposeInt('promptTokens', { description: 'Tokens of all the texts together (Ollama: prompt_eval_count).' }),
  }),
});

export const EmbedResult = builder.objectRef<EmbedResultShape>('EmbedResult').implement({
  description: 'Embedding vectors, one per input text, and what the request cost.',
  fields: (t) => ({
    embeddings: t.field({
      type: t.listRef(['Float']),
      description: 'One vector per input, in input order; L2-normalised (unit length), as Ollama returns them.',
      resolve: (r) => r.embeddings,
    }),
    model: t.exposeString('model', { description: 'The Ollama model that answered (a catalog alias resolved to its name).' }),
    usage: t.field({ type: EmbedUsage, description: 'Token counts.', resolve: (r) => r.usage }),
    creditsCharged: t.exposeInt('creditsCharged', { description: 'Credits taken from the key: REQUEST_COST plus the model\'s prompt-token price.' }),
    generationId: t.exposeID('generationId', { description: 'The request\'s row in the usage log (kind `embed`; the vectors are not stored).' }),
  }),
});
