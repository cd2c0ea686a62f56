import { badInput } from '../platform/errors.js';

/** Image types vision models accept, recognised by their first bytes (not by what a client claims). */
const SIGNATURES: Array<{ type: string; test: (b: Buffer) => boolean }> = [
  { type: 'image/png', test: (b) => b.length > 8 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) },
  { type: 'image/jpeg', test: (b) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { type: 'image/gif', test: (b) => b.length > 6 && /^GIF8[79]a$/.test(b.subarray(0, 6).toString('latin1')) },
  { type: 'image/webp', test: (b) => b.length > 12 && b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP' },
];

export function sniffImageType(bytes: Buffer): string | undefined {
  return SIGNATURES.find((s) => s.test(bytes))?.type;
}

/** Checks size and type of raw image bytes and returns them as the plain base64 Ollama expects. */
export function imageBytesToBase64(bytes: Buffer, maxBytes: number, field: string): string {
  if (bytes.length === 0) throw badInput(`${field} is empty.`, { field });
  if (bytes.length > maxBytes) throw badInput(`${field} is larger than ${maxBytes} bytes.`, { field, maxBytes });
  if (!sniffImageType(bytes)) throw badInput(`${field} is not a PNG, JPEG, GIF or WebP image.`, { field });
  return bytes.toString('base64');
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Accepts base64 with or without a `data:image/...;base64,` prefix (Ollama rejects the prefix)
 * and returns canonical base64 after checking size and type.
 */
export function imageFromBase64(value: string, maxBytes: number, field: string): string {
  const stripped = value.replace(/^data:[\w.+/-]+;base64,/, '').replace(/\s+/g, '');
  if (stripped.length % 4 !== 0 || !BASE64.test(stripped)) throw badInput(`${field} is not valid base64.`, { field });
  // Cheap bound before decoding: 4 base64 characters per 3 bytes.
  if ((stripped.length / 4) * 3 > maxBytes + 3) throw badInput(`${field} is larger than ${maxBytes} bytes.`, { field, maxBytes });
  return imageBytesToBase64(Buffer.from(stripped, 'base64'), maxBytes, field);
}
