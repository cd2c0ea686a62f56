/**
 * Ollama model names as Ollama compares them: the default registry host and `library/`
 * namespace dropped, `:latest` added when no tag is given, case-insensitive.
 * `llama3.2` and `registry.ollama.ai/library/Llama3.2:latest` are the same model.
 */
export function normalizeModelName(name: string): string {
  let n = name.trim().toLowerCase();
  n = n.replace(/^registry\.ollama\.ai\//, '').replace(/^library\//, '');
  const lastSegment = n.slice(n.lastIndexOf('/') + 1);
  return lastSegment.includes(':') ? n : `${n}:latest`;
}
