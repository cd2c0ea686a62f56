// Deterministic "inference": what the emulated model says, split into tokens, with num_predict and
// stop sequences applied the way a runner does. Same model + same prompt => same tokens, always.

import { createHash } from 'node:crypto';

/** Word-ish tokens that keep their leading space: "Hello", " world", ",", " 🦙". Never splits a code point. */
export function tokenize(text: string): string[] {
  return text.match(/\s*[\p{L}\p{N}\p{M}_']+|\s*[^\s\p{L}\p{N}\p{M}_']|\s+/gu) ?? [];
}

function hash(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32BE(0);
}

/** Stable fake vocabulary ids, used for generate's `context`. */
export function tokenIds(tokens: string[]): number[] {
  return tokens.map((t) => hash(`tok:${t}`) % 128_000);
}

const CLOSINGS = [
  'That is all I can say for now — the café is closing 🦙.',
  'Short answer: it depends; long answer: ask again with more détails 🦙.',
  'I hope this helps — bonne journée 🦙!',
];

/**
 * The default reply: mentions the model and echoes the start of the prompt so tests can tell replies
 * apart, and always contains multibyte UTF-8 (—, é, 🦙) so clients' chunk decoding gets exercised.
 */
export function defaultReply(model: string, prompt: string): string {
  const words = prompt.trim().split(/\s+/).filter(Boolean);
  const echo = words.slice(0, 6).join(' ') + (words.length > 6 ? ' …' : '');
  const closing = CLOSINGS[hash(`${model}\n${prompt}`) % CLOSINGS.length];
  return `Hello from ${model}! You said: "${echo}". ${closing}`;
}

export function defaultThinking(prompt: string): string {
  const words = prompt.trim().split(/\s+/).filter(Boolean).slice(0, 4).join(' ');
  return `The user wrote "${words}". I should answer briefly and politely.`;
}

const FILLER = tokenize(' The llama keeps talking — about the café, the weather and 🦙 things, on and on.');

/** `n` tokens of deterministic filler, for models that talk long or without end. */
export function fillerTokens(n: number): string[] {
  return Array.from({ length: Math.max(0, n) }, (_, i) => FILLER[i % FILLER.length]);
}

/** A value shaped by a JSON Schema: objects get every property, strings get `text`. */
export function fromSchema(schema: unknown, text: string, depth = 0): unknown {
  if (!schema || typeof schema !== 'object' || depth > 5) return text;
  const s = schema as Record<string, unknown>;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'object': {
      const props = (s.properties ?? {}) as Record<string, unknown>;
      return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, fromSchema(v, text, depth + 1)]));
    }
    case 'array':
      return [fromSchema(s.items, text, depth + 1)];
    case 'integer':
    case 'number':
      return 42;
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return text;
  }
}

/** A JSON reply for `format`: "json" gives a small object, a schema gives an object matching its shape. */
export function jsonReply(format: unknown, text: string): string {
  const value = format === 'json' ? { answer: text } : fromSchema(format, text);
  return JSON.stringify(value);
}

export interface Piece {
  kind: 'thinking' | 'content';
  text: string;
}
export interface Plan {
  pieces: Piece[];
  /** Tokens "generated", including a token that was cut by a stop sequence. */
  evalCount: number;
  doneReason: 'stop' | 'length';
}

/**
 * Apply the token limit (num_predict or the runner's bound: done_reason "length") and stop strings (matched in
 * the content, output cut right before the match, done_reason "stop"). A stop string spanning several
 * tokens is withheld as a whole, like the runner's pending-text buffer does. Thinking tokens count
 * toward num_predict like they do on a real runner.
 */
export function planOutput(
  thinking: string[],
  content: string[],
  numPredict: number | undefined,
  stop: string[],
): Plan {
  const all: Piece[] = [
    ...thinking.map((text) => ({ kind: 'thinking' as const, text })),
    ...content.map((text) => ({ kind: 'content' as const, text })),
  ];
  const limit = numPredict !== undefined && numPredict > 0 ? numPredict : Infinity;
  const stops = stop.filter((s) => s !== '');
  let text = ''; // all content up to and including token i
  for (let i = 0; i < all.length; i++) {
    if (i >= limit) return { pieces: all.slice(0, i), evalCount: i, doneReason: 'length' };
    if (all[i].kind !== 'content' || stops.length === 0) continue;
    text += all[i].text;
    const hits = stops.map((s) => text.indexOf(s)).filter((at) => at >= 0);
    if (hits.length === 0) continue;
    // Keep content up to the earliest match; the tokens before it are clipped accordingly.
    let budget = Math.min(...hits);
    const pieces: Piece[] = [];
    for (const piece of all.slice(0, i + 1)) {
      if (piece.kind === 'thinking') pieces.push(piece);
      else if (budget > 0) {
        const kept = piece.text.slice(0, budget);
        budget -= kept.length;
        pieces.push({ kind: 'content', text: kept });
      }
    }
    return { pieces, evalCount: i + 1, doneReason: 'stop' };
  }
  return { pieces: all, evalCount: all.length, doneReason: 'stop' };
}
