// Request-body decoding that fails the way Ollama's Go server does (gin ShouldBindJSON -> encoding/json):
// same 400 messages for syntax errors, type mismatches and bad base64, so a gateway's error
// mapping can be tested against the emulator without a real Ollama.

import { validateGoBase64 } from './base64.js';

export type DecodeResult = { ok: true; value: unknown } | { ok: false; error: string; empty?: boolean };

class SyntaxFailure {
  constructor(readonly message: string) {}
}

/** Go's json.quoteChar: how a bad byte is shown in scanner errors. */
function quoteChar(c: number): string {
  if (c === 0x27) return `'\\''`;
  if (c === 0x22) return `'"'`;
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 92: '\\\\' };
  if (named[c]) return `'${named[c]}'`;
  if (c < 0x20 || c === 0x7f) return `'\\x${c.toString(16).padStart(2, '0')}'`;
  if (c >= 0x80 && c <= 0xa0) return `'\\u00${c.toString(16)}'`;
  return `'${String.fromCharCode(c)}'`;
}

/**
 * A strict JSON syntax walk over bytes producing Go scanner messages. Like json.Decoder it reads one
 * value and ignores whatever follows it. Returns the end offset of that value.
 */
class GoScanner {
  private i = 0;
  constructor(private readonly b: Buffer) {}

  private eof(): SyntaxFailure {
    return new SyntaxFailure('unexpected EOF');
  }
  private bad(context: string): SyntaxFailure {
    return new SyntaxFailure(`invalid character ${quoteChar(this.b[this.i])} ${context}`);
  }
  private ws(): void {
    while (this.i < this.b.length && [0x20, 0x09, 0x0a, 0x0d].includes(this.b[this.i])) this.i++;
  }
  private need(): number {
    if (this.i >= this.b.length) throw this.eof();
    return this.b[this.i];
  }

  /** Returns the end offset, or null when the input is empty/whitespace (Go: io.EOF). */
  top(): number | null {
    this.ws();
    if (this.i >= this.b.length) return null;
    this.value();
    return this.i;
  }

  private value(): void {
    this.ws();
    const c = this.need();
    if (c === 0x7b) return this.object();
    if (c === 0x5b) return this.array();
    if (c === 0x22) return this.string();
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (c === 0x74) return this.literal('true');
    if (c === 0x66) return this.literal('false');
    if (c === 0x6e) return this.literal('null');
    throw this.bad('looking for beginning of value');
  }

  private object(): void {
    this.i++;
    this.ws();
    if (this.need() === 0x7d) {
      this.i++;
      return;
    }
    for (;;) {
      if (this.need() !== 0x22) throw this.bad('looking for beginning of object key string');
      this.string();
      this.ws();
      if (this.need() !== 0x3a) throw this.bad('after object key');
      this.i++;
      this.value();
      this.ws();
      const c = this.need();
      if (c === 0x7d) {
        this.i++;
        return;
      }
      if (c !== 0x2c) throw this.bad('after object key:value pair');
      this.i++;
      this.ws();
    }
  }

  private array(): void {
    this.i++;
    this.ws();
    if (this.need() === 0x5d) {
      this.i++;
      return;
    }
    for (;;) {
      this.value();
      this.ws();
      const c = this.need();
      if (c === 0x5d) {
        this.i++;
        return;
      }
      if (c !== 0x2c) throw this.bad('after array element');
      this.i++;
    }
  }

  private string(): void {
    this.i++;
    for (;;) {
      const c = this.need();
      if (c === 0x22) {
        this.i++;
        return;
      }
      if (c === 0x5c) {
        this.i++;
        const e = this.need();
        if (e === 0x75) {
          for (let k = 0; k < 4; k++) {
            this.i++;
            const h = this.need();
            if (!/[0-9a-fA-F]/.test(String.fromCharCode(h))) throw this.bad('in \\u hexadecimal character escape');
          }
        } else if (!'bfnrt"\\/'.includes(String.fromCharCode(e))) {
          throw this.bad('in string escape code');
        }
        this.i++;
        continue;
      }
      if (c < 0x20) throw this.bad('in string literal');
      this.i++;
    }
  }

  private digits(): void {
    while (this.i < this.b.length && this.b[this.i] >= 0x30 && this.b[this.i] <= 0x39) this.i++;
  }
  private isDigit(): boolean {
    return this.i < this.b.length && this.b[this.i] >= 0x30 && this.b[this.i] <= 0x39;
  }

  private number(): void {
    if (this.b[this.i] === 0x2d) {
      this.i++;
      if (!this.isDigit()) {
        this.need();
        throw this.bad('in numeric literal');
      }
    }
    if (this.b[this.i] === 0x30) this.i++;
    else this.digits();
    if (this.i < this.b.length && this.b[this.i] === 0x2e) {
      this.i++;
      if (!this.isDigit()) {
        this.need();
        throw this.bad('after decimal point in numeric literal');
      }
      this.digits();
    }
    if (this.i < this.b.length && (this.b[this.i] === 0x65 || this.b[this.i] === 0x45)) {
      this.i++;
      if (this.i < this.b.length && (this.b[this.i] === 0x2b || this.b[this.i] === 0x2d)) this.i++;
      if (!this.isDigit()) {
        this.need();
        throw this.bad('in exponent of numeric literal');
      }
      this.digits();
    }
  }

  private literal(word: string): void {
    this.i++;
    for (let k = 1; k < word.length; k++) {
      if (this.need() !== word.charCodeAt(k)) throw this.bad(`in literal ${word} (expecting '${word[k]}')`);
      this.i++;
    }
  }
}

/** Decode a body like json.Decoder.Decode: `empty` marks Go's io.EOF (Ollama: "missing request body"). */
export function decodeGoJson(body: Buffer): DecodeResult {
  let end: number | null;
  try {
    end = new GoScanner(body).top();
  } catch (err) {
    if (err instanceof SyntaxFailure) return { ok: false, error: err.message };
    throw err;
  }
  if (end === null) return { ok: false, error: 'EOF', empty: true };
  return { ok: true, value: JSON.parse(body.subarray(0, end).toString('utf8')) };
}

// ---- Go struct field types: enough of encoding/json's type checking for Ollama's request structs.

export type GoType =
  | { kind: 'string' | 'bool' | 'int' | 'float' | 'any' }
  | { kind: 'map'; goName: string }
  | { kind: 'slice'; elem: GoType; goName: string }
  | { kind: 'bytes'; goName: string } // []byte: a base64 string
  | { kind: 'struct'; fields: Record<string, GoType>; goName: string }
  /** A type with its own UnmarshalJSON: returns its error text, or undefined when the value is fine. */
  | { kind: 'custom'; check: (v: unknown) => string | undefined };

function jsonKind(v: unknown): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return 'array';
  return 'object';
}

function goName(t: GoType): string {
  switch (t.kind) {
    case 'string':
    case 'bool':
    case 'int':
      return t.kind;
    case 'float':
      return 'float64';
    case 'any':
      return 'interface {}';
    case 'custom':
      return 'custom';
    default:
      return t.goName;
  }
}

/**
 * Check a decoded value against a Go type. Returns the first error in document order using
 * encoding/json's wording ("json: cannot unmarshal X into Go struct field S.path of type T").
 */
function check(v: unknown, t: GoType, structName: string, path: string[]): string | undefined {
  if (v === null || t.kind === 'any') return undefined; // null leaves Go values untouched
  const mismatch = (detail = jsonKind(v)) =>
    `json: cannot unmarshal ${detail} into Go struct field ${structName}.${path.join('.')} of type ${goName(t)}`;
  switch (t.kind) {
    case 'string':
      return typeof v === 'string' ? undefined : mismatch();
    case 'bool':
      return typeof v === 'boolean' ? undefined : mismatch();
    case 'float':
      return typeof v === 'number' ? undefined : mismatch();
    case 'int':
      if (typeof v !== 'number') return mismatch();
      return Number.isInteger(v) ? undefined : mismatch(`number ${v}`);
    case 'map':
      return typeof v === 'object' && !Array.isArray(v) ? undefined : mismatch();
    case 'bytes':
      return typeof v === 'string' ? validateGoBase64(v) : mismatch();
    case 'custom':
      return t.check(v);
    case 'slice':
      if (!Array.isArray(v)) return mismatch();
      for (const item of v) {
        const err = check(item, t.elem, structName, path);
        if (err) return err;
      }
      return undefined;
    case 'struct': {
      if (typeof v !== 'object' || Array.isArray(v)) return mismatch();
      for (const [key, val] of Object.entries(v as Record<string, unknown>)) {
        const ft = t.fields[key];
        if (!ft) continue; // unknown keys are ignored by encoding/json
        const err = check(val, ft, structName, [...path, key]);
        if (err) return err;
      }
      return undefined;
    }
  }
}

/** Validate a top-level request object against a struct. `typeName` is e.g. "GenerateRequest". */
export function checkRequest(
  v: unknown,
  typeName: string,
  fields: Record<string, GoType>,
): string | undefined {
  if (v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) {
    return `json: cannot unmarshal ${jsonKind(v)} into Go value of type api.${typeName}`;
  }
  return check(v, { kind: 'struct', fields, goName: `api.${typeName}` }, typeName, []);
}
