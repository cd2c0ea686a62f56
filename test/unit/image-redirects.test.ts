// Image URLs are checked at every hop: a redirect from an allowed address to a private one is
// refused at the hop that reaches it, so a public page cannot bounce the gateway into the LAN.
// 127.0.0.1 stands in for the public server (allowed by allowAddresses); every other loopback
// address (127.0.0.2, ...) is private, as any address on the gateway's own network would be.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchImage } from '../../src/services/images/fetch-image.js';
import { PNG } from '../helpers/attack.js';

let server: Server;
let port: number;
const hits: string[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(`${req.socket.localAddress} ${req.url}`);
    const hop = /^\/hop\/(\d+)\/(.+)$/.exec(req.url ?? '');
    if (hop) {
      // /hop/<n>/<final host>: n more redirects on the allowed address, then one to the final host.
      const n = Number(hop[1]);
      const location = n > 0 ? `http://127.0.0.1:${port}/hop/${n - 1}/${hop[2]}` : `http://${hop[2]}:${port}/image.png`;
      res.writeHead(302, { location });
      return void res.end();
    }
    res.writeHead(200, { 'content-type': 'image/png' });
    res.end(PNG);
  });
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const opts = { maxBytes: 1024, timeoutMs: 5000, allowPrivate: false, allowAddresses: ['127.0.0.1'], maxRedirects: 5 };

describe('image URL redirects', () => {
  it('follows redirects between allowed addresses to the image (control)', async () => {
    expect(await fetchImage(`http://127.0.0.1:${port}/hop/2/127.0.0.1`, opts)).toBe(PNG.toString('base64'));
  });

  it.each([0, 1, 3])('refuses a redirect to a private address after %i allowed hops, and never connects to it', async (hopsFirst) => {
    hits.length = 0;
    const error = await fetchImage(`http://127.0.0.1:${port}/hop/${hopsFirst}/127.0.0.2`, opts).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(error?.code).toBe('BAD_USER_INPUT');
    expect(error?.message).toMatch(/not allowed \(private, loopback or link-local\): 127\.0\.0\.2/);
    expect(hits).toHaveLength(hopsFirst + 1);
    expect(hits.every((h) => h.startsWith('127.0.0.1 '))).toBe(true);
  });

  it('refuses a private address given directly, and everything private without allowAddresses', async () => {
    await expect(fetchImage(`http://127.0.0.2:${port}/image.png`, opts)).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(fetchImage(`http://127.0.0.1:${port}/image.png`, { ...opts, allowAddresses: undefined })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });
});
