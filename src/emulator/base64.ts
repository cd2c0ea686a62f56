// Go's base64.StdEncoding decoder, reduced to "is it valid, and if not where": Ollama decodes
// `images` as Go []byte, so a `data:` prefix or a URL-safe string fails with these exact messages.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Returns Go's error text ("illegal base64 data at input byte N"), or undefined when valid. */
export function validateGoBase64(s: string): string | undefined {
  const src = Buffer.from(s, 'utf8'); // Go indexes bytes, not UTF-16 units
  const fail = (at: number) => `illegal base64 data at input byte ${at}`;
  const isNewline = (c: number) => c === 0x0a || c === 0x0d;
  let si = 0;
  while (si < src.length) {
    // Decode one 4-character quantum, mirroring encoding/base64 decodeQuantum.
    let j = 0;
    while (j < 4) {
      if (si === src.length) {
        if (j === 0) return undefined;
        return fail(si - j); // StdEncoding requires padding
      }
      const c = src[si++];
      if (ALPHABET.includes(String.fromCharCode(c)) && c < 0x80) {
        j++;
        continue;
      }
      if (isNewline(c)) continue;
      if (c !== 0x3d) return fail(si - 1);
      // Padding '=' reached.
      if (j === 0 || j === 1) return fail(si - 1);
      if (j === 2) {
        while (si < src.length && isNewline(src[si])) si++;
        if (si === src.length) return fail(src.length);
        if (src[si] !== 0x3d) return fail(si - 1);
        si++;
      }
      while (si < src.length && isNewline(src[si])) si++;
      return si < src.length ? fail(si) : undefined;
    }
  }
  return undefined;
}
