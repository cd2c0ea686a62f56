// The grace period of websockets opened without a key (GraphiQL): closed 4401 unless an
// operation brings a valid key in time.
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { WebSocket } from 'ws';
import type { ApiKey } from '../../src/entities/api-key.js';
import { ConnectionRegistry } from '../../src/services/platform/connections.js';
import type { KeyService } from '../../src/services/access/keys.js';
import { AuthEdge } from '../../src/transport/auth.js';
import { OperationKeys } from '../../src/transport/operation-keys.js';

class FakeSocket extends EventEmitter {
  closedWith: number | null = null;
  close(code: number) {
    this.closedWith = code;
    this.emit('close');
  }
}

const VALID = 'llmgw_valid';
const keys = { authenticate: async (s: string) => (s === VALID ? ({ id: 'k1' } as ApiKey) : null) } as unknown as KeyService;
const edgeOf = (connections = new ConnectionRegistry(), maxSocketsPerKey = 0) =>
  new AuthEdge({ keys, connections, trustProxy: false, authFailureLimit: 0, authFailureWindowSeconds: 60, maxSocketsPerKey });

describe('OperationKeys', () => {
  // The 50 ms grace period runs on a fake clock: a busy machine could otherwise take longer than
  // that to resolve the valid key, and the socket would be closed while the test was still sending it.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('closes a keyless socket with 4401 when no valid key arrives within the grace period', async () => {
    const ops = new OperationKeys(edgeOf(), 50);
    const socket = new FakeSocket();
    ops.acceptKeyless(socket as unknown as WebSocket);
    expect(await ops.authenticate(socket as unknown as WebSocket, '127.0.0.1', { headers: { 'x-api-key': 'llmgw_wrong' } })).toMatchObject({ kind: 'refused' });
    vi.advanceTimersByTime(80);
    expect(socket.closedWith).toBe(4401);
  });

  it('keeps it open once an operation brought a valid key, and registers it for revocation once per key', async () => {
    const connections = new ConnectionRegistry();
    const ops = new OperationKeys(edgeOf(connections), 50);
    const socket = new FakeSocket();
    ops.acceptKeyless(socket as unknown as WebSocket);
    for (let i = 0; i < 3; i++) expect(await ops.authenticate(socket as unknown as WebSocket, '127.0.0.1', { headers: { Authorization: `Bearer ${VALID}` } })).toMatchObject({ kind: 'key', key: { id: 'k1' } });
    vi.advanceTimersByTime(80);
    expect(socket.closedWith).toBeNull();
    expect(connections.countFor('k1')).toBe(1);
    expect(connections.closeOwner('k1')).toBe(1);
    expect(socket.closedWith).toBe(4403);
  });

  it('authenticates nothing on a socket that was not accepted as keyless', async () => {
    const ops = new OperationKeys(edgeOf(), 50);
    expect(await ops.authenticate(new FakeSocket() as unknown as WebSocket, '127.0.0.1', { headers: { 'x-api-key': VALID } })).toBeNull();
  });

  it('counts a keyless socket against MAX_SOCKETS_PER_KEY once its operations bring a key (closed 1013 past it)', async () => {
    const edge = edgeOf(new ConnectionRegistry(), 2);
    const ops = new OperationKeys(edge, 50);
    const sockets = [new FakeSocket(), new FakeSocket(), new FakeSocket()];
    const results = [];
    for (const s of sockets) {
      ops.acceptKeyless(s as unknown as WebSocket);
      results.push(await ops.authenticate(s as unknown as WebSocket, '127.0.0.1', { headers: { 'x-api-key': VALID } }));
    }
    expect(results.map((r) => r?.kind)).toEqual(['key', 'key', 'over-limit']);
    expect(sockets.map((s) => s.closedWith)).toEqual([null, null, 1013]);
    expect(edge.socketsOf('k1')).toBe(2);
    sockets[0].close(1000);
    expect(edge.socketsOf('k1')).toBe(1);
  });
});
