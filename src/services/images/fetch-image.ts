import http from 'node:http';
import https from 'node:https';
import { badInput } from '../platform/errors.js';
import { onFirstUse } from '../platform/on-first-use.js';
import { imageBytesToBase64 } from './image-bytes.js';

export interface ImageFetchOptions {
  maxBytes: number;
  timeoutMs: number;
  /** Allow private, loopback and link-local targets (off by default: SSRF guard). */
  allowPrivate: boolean;
  /** Addresses reachable even though private (an internal image host); every other private address stays refused. */
  allowAddresses?: string[];
  maxRedirects?: number;
}

/**
 * Downloads an image for a vision model. Every connection (the first and each redirect) goes
 * through request-filtering-agent, which checks the address *after* DNS resolution, so a public
 * name that resolves to a private address is refused too. Size, type and time are capped.
 */
export async function fetchImage(url: string, opts: ImageFetchOptions, field = 'imageUrls'): Promise<string> {
  const deadline = AbortSignal.timeout(opts.timeoutMs);
  let current = parseUrl(url, field);
  for (let hop = 0; hop <= (opts.maxRedirects ?? 3); hop++) {
    const response = await get(current, opts, deadline, field);
    if (response.kind === 'redirect') {
      current = parseUrl(new URL(response.location, current).toString(), field);
      continue;
    }
    return imageBytesToBase64(response.body, opts.maxBytes, field);
  }
  throw badInput(`${field}: too many redirects.`, { field });
}

function parseUrl(raw: string, field: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badInput(`${field}: "${raw.slice(0, 200)}" is not a URL.`, { field });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw badInput(`${field}: only http and https URLs are fetched.`, { field });
  if (url.username || url.password) throw badInput(`${field}: URLs with credentials are refused.`, { field });
  return url;
}

type Fetched = { kind: 'redirect'; location: string } | { kind: 'body'; body: Buffer };

// Imported with the first image URL, not at start: most requests carry none (idle memory).
const filteringAgent = onFirstUse(() => import('request-filtering-agent'));

async function get(url: URL, opts: ImageFetchOptions, signal: AbortSignal, field: string): Promise<Fetched> {
  const { useAgent } = await filteringAgent();
  const agent = useAgent(url.toString(), { allowPrivateIPAddress: opts.allowPrivate, allowIPAddressList: opts.allowAddresses, keepAlive: false });
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<Fetched>((resolve, reject) => {
    const fail = (message: string) => reject(badInput(`${field}: ${message}`, { field }));
    const req = client.get(url, { agent, signal, headers: { accept: 'image/*' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        return resolve({ kind: 'redirect', location: res.headers.location });
      }
      if (status !== 200) {
        res.resume();
        return fail(`the server answered HTTP ${status}.`);
      }
      const type = String(res.headers['content-type'] ?? '');
      if (type && !type.startsWith('image/') && !type.startsWith('application/octet-stream')) {
        res.resume();
        return fail(`the server sent ${type.split(';')[0]}, not an image.`);
      }
      const declared = Number(res.headers['content-length'] ?? 0);
      if (declared > opts.maxBytes) {
        res.destroy();
        return fail(`the image is larger than ${opts.maxBytes} bytes.`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > opts.maxBytes) {
          res.destroy();
          fail(`the image is larger than ${opts.maxBytes} bytes.`);
        } else chunks.push(chunk);
      });
      res.on('end', () => resolve({ kind: 'body', body: Buffer.concat(chunks) }));
      res.on('error', (e) => fail(e.message));
    });
    req.on('error', (e: Error & { code?: string }) => {
      if (e.name === 'AbortError' || signal.aborted) return fail(`no image within ${opts.timeoutMs} ms.`);
      if (isAddressRefusal(e)) return fail(`the address is not allowed (private, loopback or link-local): ${url.hostname}.`);
      fail(`could not fetch the image (${e.code ?? e.message}).`);
    });
  });
}

/**
 * request-filtering-agent (3.x, lib/request-filtering-agent.js `validateIPAddress`) refuses a
 * private, loopback, link-local or meta address with a plain Error, text only ("DNS lookup <address>
 * ... is not allowed. Because ..."), no code: this file is the one place its errors arrive.
 */
function isAddressRefusal(e: Error): boolean {
  return /is not allowed/i.test(e.message);
}
