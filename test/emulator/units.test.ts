// Pure-function tests of the Go ports and the deterministic script.
import { describe, expect, it } from 'vitest';
import { validateGoBase64 } from '../../src/emulator/base64.js';
import { FOREVER_MS, decodeKeepAlive, parseGoDuration } from '../../src/emulator/duration.js';
import { checkRequest, decodeGoJson } from '../../src/emulator/gojson.js';
import { displayName, isValidName, nameKey, normalizeModelName, parseModelName, qualifiedName } from '../../src/emulator/models.js';
import { GENERATE_FIELDS } from '../../src/emulator/requests.js';
import { defaultReply, planOutput, tokenize } from '../../src/emulator/script.js';

describe('Go time.ParseDuration port', () => {
  it.each([
    ['5m', 300_000_000_000n],
    ['1h30m', 5_400_000_000_000n],
    ['300ms', 300_000_000n],
    ['1.5s', 1_500_000_000n],
    ['0', 0n],
    ['-1m', -60_000_000_000n],
    ['2h45m30.5s', 9_930_500_000_000n],
    ['10µs', 10_000n],
  ])('%s', (s, ns) => expect(parseGoDuration(s)).toBe(ns));

  it.each([
    ['300', 'time: missing unit in duration "300"'],
    ['', 'time: invalid duration ""'],
    ['5x', 'time: unknown unit "x" in duration "5x"'],
    ['m', 'time: invalid duration "m"'],
    ['.s', 'time: invalid duration ".s"'],
    ['1m30', 'time: missing unit in duration "1m30"'],
  ])('rejects %j', (s, msg) => expect(() => parseGoDuration(s)).toThrow(msg));

  it('decodes keep_alive like api.Duration', () => {
    expect(decodeKeepAlive(undefined)).toBeUndefined();
    expect(decodeKeepAlive(null)).toBeUndefined();
    expect(decodeKeepAlive(300)).toEqual({ ok: true, ms: 300_000 });
    expect(decodeKeepAlive(1.5)).toEqual({ ok: true, ms: 1500 });
    expect(decodeKeepAlive(0)).toEqual({ ok: true, ms: 0 });
    expect(decodeKeepAlive('0')).toEqual({ ok: true, ms: 0 });
    expect(decodeKeepAlive(-1)).toEqual({ ok: true, ms: FOREVER_MS });
    expect(decodeKeepAlive('-5m')).toEqual({ ok: true, ms: FOREVER_MS });
    expect(decodeKeepAlive('300')).toEqual({ ok: false, error: 'time: missing unit in duration "300"' });
    expect(decodeKeepAlive(true)).toEqual({ ok: false, error: "Unsupported type: 'bool'" });
    // ~292 years
    expect(FOREVER_MS / (365.25 * 86_400_000)).toBeCloseTo(292.3, 1);
  });
});

describe('Go base64 validation', () => {
  it('accepts standard padded base64 and empty input', () => {
    expect(validateGoBase64('')).toBeUndefined();
    expect(validateGoBase64(Buffer.from('hello!').toString('base64'))).toBeUndefined();
    expect(validateGoBase64(Buffer.from('hi').toString('base64'))).toBeUndefined(); // "aGk="
  });
  it('reports the byte offset like Go', () => {
    expect(validateGoBase64('data:image/png;base64,iVBORw0K')).toBe('illegal base64 data at input byte 4');
    expect(validateGoBase64('aGk')).toBe('illegal base64 data at input byte 0'); // missing padding
    expect(validateGoBase64('aGk=x')).toBe('illegal base64 data at input byte 4'); // trailing garbage
    expect(validateGoBase64('ab-_')).toBe('illegal base64 data at input byte 2'); // URL alphabet
  });
});

describe('Go JSON decoding', () => {
  const dec = (s: string) => decodeGoJson(Buffer.from(s));
  it('gives Go scanner messages', () => {
    expect(dec('')).toEqual({ ok: false, error: 'EOF', empty: true });
    expect(dec('  \n')).toMatchObject({ empty: true });
    expect(dec('xyz')).toEqual({ ok: false, error: "invalid character 'x' looking for beginning of value" });
    expect(dec('{"a" 1}')).toEqual({ ok: false, error: "invalid character '1' after object key" });
    expect(dec('{"a":1 "b":2}')).toEqual({ ok: false, error: `invalid character '"' after object key:value pair` });
    expect(dec('{"a":tru}')).toEqual({ ok: false, error: "invalid character '}' in literal true (expecting 'e')" });
    expect(dec('{"a":[1,]}')).toEqual({ ok: false, error: "invalid character ']' looking for beginning of value" });
    expect(dec('{"a":')).toEqual({ ok: false, error: 'unexpected EOF' });
  });
  it('reads one value and ignores what follows, like json.Decoder', () => {
    expect(dec('{"model":"m"} trailing')).toEqual({ ok: true, value: { model: 'm' } });
  });
  it('reports type mismatches with the Go struct path', () => {
    expect(checkRequest({ model: 'm', prompt: 5 }, 'GenerateRequest', GENERATE_FIELDS)).toBe(
      'json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string',
    );
    expect(checkRequest([], 'GenerateRequest', GENERATE_FIELDS)).toBe(
      'json: cannot unmarshal array into Go value of type api.GenerateRequest',
    );
    expect(checkRequest({ top_logprobs: 1.5 }, 'GenerateRequest', GENERATE_FIELDS)).toBe(
      'json: cannot unmarshal number 1.5 into Go struct field GenerateRequest.top_logprobs of type int',
    );
    expect(checkRequest({ model: 'm', stream: null, options: null }, 'GenerateRequest', GENERATE_FIELDS)).toBeUndefined();
  });
});

describe('model names (types/model/name.go port)', () => {
  it('normalizes to the display form', () => {
    expect(normalizeModelName('llama3.2')).toBe('llama3.2:latest');
    expect(normalizeModelName('library/llama3.2:3b')).toBe('llama3.2:3b');
    expect(normalizeModelName('registry.ollama.ai/library/llama3.2:latest')).toBe('llama3.2:latest');
    expect(normalizeModelName('me/mine')).toBe('me/mine:latest');
    expect(normalizeModelName('example.com:5000/team/m:v1')).toBe('example.com:5000/team/m:v1');
    expect(qualifiedName(parseModelName('llava:7b'))).toBe('registry.ollama.ai/library/llava:7b');
  });
  it('matches case-insensitively and validates', () => {
    expect(nameKey('LLaMA3.2')).toBe(nameKey('llama3.2:latest'));
    expect(nameKey('llama3.2:1b')).not.toBe(nameKey('llama3.2'));
    expect(isValidName(parseModelName(''))).toBe(false);
    expect(isValidName(parseModelName('llama3.2:'))).toBe(false);
    expect(isValidName(parseModelName('bad name'))).toBe(false);
    expect(displayName(parseModelName('Qwen3:0.6B'))).toBe('Qwen3:0.6B'); // display keeps the case as sent
  });
});

describe('deterministic script', () => {
  it('splits into word-ish tokens without breaking code points', () => {
    expect(tokenize('Hello world, café 🦙!')).toEqual(['Hello', ' world', ',', ' café', ' 🦙', '!']);
    expect(tokenize('Hello world, café 🦙!').join('')).toBe('Hello world, café 🦙!');
  });
  it('replies deterministically, per model and prompt, with multibyte text', () => {
    const a = defaultReply('llama3.2:latest', 'Why is the sky blue?');
    expect(defaultReply('llama3.2:latest', 'Why is the sky blue?')).toBe(a);
    expect(a).toContain('llama3.2:latest');
    expect(a).toContain('Why is the sky blue?');
    expect(Buffer.byteLength(a)).toBeGreaterThan(a.length); // has multibyte UTF-8
    expect(defaultReply('qwen3:0.6b', 'Why is the sky blue?')).not.toBe(a);
  });
  it('applies num_predict and stop sequences', () => {
    const toks = tokenize('one two three four five');
    expect(planOutput([], toks, 2, [])).toEqual({
      pieces: [{ kind: 'content', text: 'one' }, { kind: 'content', text: ' two' }],
      evalCount: 2,
      doneReason: 'length',
    });
    expect(planOutput([], toks, 0, [])).toMatchObject({ evalCount: 5, doneReason: 'stop' }); // <= 0: no limit
    // A stop sequence spanning two tokens is withheld entirely; text before it is kept.
    const p = planOutput([], toks, undefined, ['ee fo']);
    expect(p.pieces.map((x) => x.text).join('')).toBe('one two thr');
    expect(p).toMatchObject({ evalCount: 4, doneReason: 'stop' });
    // Thinking tokens count toward num_predict.
    expect(planOutput(['hm'], toks, 2, [])).toMatchObject({ evalCount: 2, doneReason: 'length' });
  });
});
