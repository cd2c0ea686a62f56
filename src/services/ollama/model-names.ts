import { badInput } from '../platform/errors.js';

const DEFAULT_HOST = 'registry.ollama.ai';
const DEFAULT_NAMESPACE = 'library';
const DEFAULT_TAG = 'latest';
const MAX_NAME_LENGTH = 500;

interface NameParts {
  host: string;
  namespace: string;
  model: string;
  tag: string;
}

type Part = keyof NameParts;

/** Ollama's part rules (types/model/name.go): a letter, digit or `_` first, then those plus `-` and `.`. */
function validPart(kind: Part, s: string): boolean {
  if (s.length < 1 || s.length > (kind === 'host' ? 350 : 80)) return false;
  if (!/^[A-Za-z0-9_]/.test(s)) return false;
  const rest = kind === 'host' ? /^[A-Za-z0-9_.:-]*$/ : kind === 'namespace' ? /^[A-Za-z0-9_-]*$/ : /^[A-Za-z0-9_.-]*$/;
  return rest.test(s.slice(1));
}

function parse(input: string): NameParts | null {
  const s = input.trim();
  if (!s || s.length > MAX_NAME_LENGTH) return null;
  let rest = s;
  let tag = DEFAULT_TAG;
  if (rest.lastIndexOf(':') > rest.lastIndexOf('/')) {
    tag = rest.slice(rest.lastIndexOf(':') + 1);
    rest = rest.slice(0, rest.lastIndexOf(':'));
  }
  const segments = rest.split('/');
  if (segments.length > 3) return null;
  const model = segments.pop() ?? '';
  const namespace = segments.pop() ?? DEFAULT_NAMESPACE;
  const host = segments.pop() ?? DEFAULT_HOST;
  const parts = { host, namespace, model, tag };
  return (Object.keys(parts) as Part[]).every((k) => validPart(k, parts[k])) ? parts : null;
}

/**
 * The gateway's canonical form of an Ollama model name, as Ollama compares names: default host
 * and `library/` namespace dropped, `:latest` added when no tag is given, lower case
 * (`Llama3.2` → `llama3.2:latest`). Returns null for a name Ollama would refuse.
 */
export function canonicalModelName(input: string): string | null {
  const n = parse(input);
  if (!n) return null;
  const prefix =
    n.host.toLowerCase() !== DEFAULT_HOST ? `${n.host}/${n.namespace}/` : n.namespace.toLowerCase() !== DEFAULT_NAMESPACE ? `${n.namespace}/` : '';
  return `${prefix}${n.model}:${n.tag}`.toLowerCase();
}

/** canonicalModelName, or BAD_USER_INPUT naming the field. */
/**
 * The key a model is matched on everywhere (catalogue, /api/tags, /api/ps, busy and activity
 * maps): its canonical name, or, for a name that is not a valid model name, the name in lower case.
 */
export const modelKey = (name: string): string => canonicalModelName(name) ?? name.trim().toLowerCase();

export function requireModelName(input: string, field = 'name'): string {
  const name = canonicalModelName(input);
  if (!name) throw badInput(`"${input.slice(0, 100)}" is not a valid Ollama model name (e.g. "llama3.2" or "qwen3:0.6b").`, { field });
  return name;
}

const ALIAS = /^[a-z0-9_][a-z0-9_.-]{0,63}$/;

/**
 * Aliases are short lower-case names without `:` or `/`, so an explicit `name:tag` always means
 * an Ollama model. Empty means "no alias" (null).
 */
export function normalizeAlias(input: string | null | undefined, field = 'alias'): string | null {
  if (input === null || input === undefined) return null;
  const alias = input.trim().toLowerCase();
  if (alias === '') return null;
  if (!ALIAS.test(alias))
    throw badInput(`Alias "${input.slice(0, 100)}" is invalid: use 1 to 64 letters, digits, "_", "-" or "." (no ":" or "/").`, { field });
  return alias;
}
