import type { IncomingMessage } from 'node:http';

/**
 * The address a request came from: the TCP peer, or with `trustProxy` the last
 * `X-Forwarded-For` entry (the one the reverse proxy in front of the gateway added; entries
 * before it are whatever the client sent and cannot be trusted). IPv4-mapped IPv6 is unwrapped.
 */
export function clientIp(req: Pick<IncomingMessage, 'headers' | 'socket'> | undefined, trustProxy: boolean): string {
  if (!req) return 'unknown';
  if (trustProxy) {
    const header = req.headers['x-forwarded-for'];
    const list = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((s) => s.trim()).filter(Boolean);
    const last = list.at(-1);
    if (last) return normalize(last);
  }
  return normalize(req.socket?.remoteAddress ?? 'unknown');
}

const normalize = (address: string) => (address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address);
