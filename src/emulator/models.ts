// Model names (a port of Ollama's types/model/name.go) and the default catalogue.

import { createHash } from 'node:crypto';
import type { EmulatedModel } from './types.js';

const DEFAULT_HOST = 'registry.ollama.ai';
const DEFAULT_NAMESPACE = 'library';
const DEFAULT_TAG = 'latest';
const MISSING = '!MISSING!';

export interface ModelName {
  host: string;
  namespace: string;
  model: string;
  tag: string;
}

function cutLast(s: string, sep: string): [string, string, boolean] {
  const i = s.lastIndexOf(sep);
  return i >= 0 ? [s.slice(0, i), s.slice(i + sep.length), true] : [s, '', false];
}
/** Like cutLast, but an empty side becomes a marker that fails validation ("x:" has no tag). */
function cutPromised(s: string, sep: string): [string, string, boolean] {
  const [before, after, ok] = cutLast(s, sep);
  return ok ? [before || MISSING, after || MISSING, true] : [before, after, false];
}

/** ParseName: fill in default host, namespace and tag. */
export function parseModelName(input: string): ModelName {
  const n: ModelName = { host: '', namespace: '', model: '', tag: '' };
  let s = input;
  if (s.lastIndexOf(':') > s.lastIndexOf('/')) [s, n.tag] = cutPromised(s, ':');
  let promised: boolean;
  [s, n.model, promised] = cutPromised(s, '/');
  if (!promised) n.model = s;
  else {
    [s, n.namespace, promised] = cutPromised(s, '/');
    if (!promised) n.namespace = s;
    else n.host = s.includes('://') ? s.slice(s.indexOf('://') + 3) : s;
  }
  return {
    host: n.host || DEFAULT_HOST,
    namespace: n.namespace || DEFAULT_NAMESPACE,
    model: n.model,
    tag: n.tag || DEFAULT_TAG,
  };
}

function isValidPart(kind: 'host' | 'namespace' | 'model' | 'tag', s: string): boolean {
  const max = kind === 'host' ? 350 : 80;
  if (s.length < 1 || s.length > max) return false;
  const alnum = (c: string) => /[A-Za-z0-9_]/.test(c);
  if (!alnum(s[0])) return false;
  for (const c of s.slice(1)) {
    if (c === '_' || c === '-') continue;
    if (c === '.') {
      if (kind === 'namespace') return false;
      continue;
    }
    if (c === ':') {
      if (kind !== 'host') return false;
      continue;
    }
    if (!alnum(c)) return false;
  }
  return true;
}

export function isValidName(n: ModelName): boolean {
  return (
    isValidPart('host', n.host) &&
    isValidPart('namespace', n.namespace) &&
    isValidPart('model', n.model) &&
    isValidPart('tag', n.tag)
  );
}

/**
 * server/model_resolver.go parseAndValidateModelRef: a blank name is "model is required"
 * (modelref.ErrModelRequired), one that fails name.go IsValid is "unqualified name", which the
 * handlers answer with 400 `invalid model name` (routes.go writeModelRefParseError).
 */
export function modelRefError(raw: string | undefined): 'required' | 'invalid' | undefined {
  const trimmed = (raw ?? '').trim();
  if (trimmed === '') return 'required';
  return isValidName(parseModelName(trimmed)) ? undefined : 'invalid';
}

/** errtypes.InvalidModelNameErrMsg */
export const INVALID_MODEL_NAME = 'invalid model name';

/** DisplayShortest: 'llama3.2:latest', 'user/m:tag', 'host/ns/m:tag'. This is what /api/tags and /api/ps show. */
export function displayName(n: ModelName): string {
  let prefix = '';
  if (n.host.toLowerCase() !== DEFAULT_HOST) prefix = `${n.host}/${n.namespace}/`;
  else if (n.namespace.toLowerCase() !== DEFAULT_NAMESPACE) prefix = `${n.namespace}/`;
  return `${prefix}${n.model}:${n.tag}`;
}

/** The fully qualified form used in some Ollama errors: 'registry.ollama.ai/library/llama3.2:latest'. */
export function qualifiedName(n: ModelName): string {
  return `${n.host}/${n.namespace}/${n.model}:${n.tag}`;
}

/** Case-insensitive identity for lookups (Ollama matches local models with EqualFold). */
export function nameKey(name: string): string {
  return qualifiedName(parseModelName(name)).toLowerCase();
}

/** Normalize a name as sent ('Llama3.2') to its display form ('Llama3.2:latest'). */
export function normalizeModelName(name: string): string {
  return displayName(parseModelName(name));
}

export function digestOf(m: EmulatedModel): string {
  return m.digest ?? createHash('sha256').update(`emulated-model:${normalizeModelName(m.name)}`).digest('hex');
}

/** Layer digests for pull progress: model weights plus a few small blobs, derived from the model digest. */
export function layersOf(m: EmulatedModel): Array<{ digest: string; size: number }> {
  const small = [487, 6016, 96, 561]; // template, license, params, config: like real manifests
  const sub = (i: number) => createHash('sha256').update(`${digestOf(m)}:${i}`).digest('hex');
  const weights = Math.max(1, m.size - small.reduce((a, b) => a + b, 0));
  return [{ digest: sub(0), size: weights }, ...small.map((size, i) => ({ digest: sub(i + 1), size }))];
}

/** GGUF families: vision models also carry the projector's 'clip'. */
export function familiesOf(m: EmulatedModel): string[] {
  return m.capabilities.includes('vision') ? [m.family, 'clip'] : [m.family];
}

/** "3.2B" -> 3200000000, "751.63M" -> 751630000: for model_info general.parameter_count. */
export function parameterCount(m: EmulatedModel): number {
  const match = /^([\d.]+)\s*([KMBT]?)$/i.exec(m.parameterSize);
  if (!match) return 0;
  const scale = { '': 1, K: 1e3, M: 1e6, B: 1e9, T: 1e12 }[match[2].toUpperCase() as '' | 'K' | 'M' | 'B' | 'T'];
  return Math.round(Number(match[1]) * scale);
}

/** Installed by default. Sizes and metadata mirror the real library entries. */
export function defaultModels(): EmulatedModel[] {
  return [
    {
      name: 'llama3.2:latest',
      size: 2_019_393_189,
      digest: 'a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72',
      family: 'llama',
      parameterSize: '3.2B',
      quantizationLevel: 'Q4_K_M',
      capabilities: ['completion', 'tools'],
      contextLength: 131_072,
    },
    {
      name: 'qwen3:0.6b',
      size: 522_653_767,
      family: 'qwen3',
      parameterSize: '751.63M',
      quantizationLevel: 'Q4_K_M',
      capabilities: ['completion', 'tools', 'thinking'],
      contextLength: 40_960,
    },
    {
      name: 'llava:7b',
      size: 4_733_363_377,
      family: 'llama',
      parameterSize: '7B',
      quantizationLevel: 'Q4_0',
      capabilities: ['completion', 'vision'],
      contextLength: 32_768,
    },
    {
      // Harmony output parser: thinks by default and flushes held-back text on the done chunk.
      name: 'gpt-oss:20b',
      size: 13_780_173_839,
      family: 'gptoss',
      parameterSize: '20.9B',
      quantizationLevel: 'MXFP4',
      capabilities: ['completion', 'tools', 'thinking'],
      contextLength: 131_072,
      flushOnDone: 3,
    },
    {
      name: 'nomic-embed-text:latest',
      size: 274_302_450,
      family: 'nomic-bert',
      parameterSize: '137M',
      quantizationLevel: 'F16',
      capabilities: ['embedding'],
      contextLength: 2_048,
      embeddingLength: 768,
    },
    {
      // A base (text) model: it rarely emits an end token, so without num_predict it runs on.
      name: 'llama3.2:3b-text-q4_K_M',
      size: 2_019_393_312,
      family: 'llama',
      parameterSize: '3.2B',
      quantizationLevel: 'Q4_K_M',
      capabilities: ['completion'],
      contextLength: 131_072,
      endless: true,
    },
  ];
}

/** Not installed, but /api/pull can fetch them. */
export function defaultRegistry(): EmulatedModel[] {
  return [
    {
      name: 'smollm2:135m',
      size: 270_898_672,
      family: 'llama',
      parameterSize: '134.52M',
      quantizationLevel: 'F16',
      capabilities: ['completion', 'tools'],
      contextLength: 8_192,
    },
    {
      name: 'phi3:mini',
      size: 2_176_178_913,
      family: 'phi3',
      parameterSize: '3.8B',
      quantizationLevel: 'Q4_0',
      capabilities: ['completion'],
      contextLength: 131_072,
    },
  ];
}
