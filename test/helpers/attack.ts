import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestGateway } from './gateway.js';

/** A PNG by its signature (what the gateway sniffs), small enough to count downloads, not bytes. */
export const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(24)]);

/** An image server that counts every request it gets (downloads the gateway made). */
export async function imageServer(): Promise<{ url: string; hits: () => number; close(): Promise<void>; server: Server }> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length });
    res.end(PNG);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/img.png`,
    hits: () => hits,
    server,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/**
 * GET /health from another loopback address than the attack's (127.0.0.2 by default, so a
 * per-address limit on 127.0.0.1 does not apply to it). Resolves with the status and the time it took.
 */
export function health(gw: TestGateway, localAddress = '127.0.0.2', timeoutMs = 5000): Promise<{ status: number; ms: number }> {
  const started = Date.now();
  const { port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port: Number(port), path: '/health', localAddress, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error(`/health did not answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
