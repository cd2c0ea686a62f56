// The grace period of websockets opened without a key (GraphiQL): closed 4401 unless an
// operation brings a valid key in time.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { ApiKey } from '../../src/entities/api-key.js';
import { ConnectionRegistry } from '../../src/services/connections.js';
import type { KeyService } from '../../src/services/keys.js';
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
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('OperationKeys', () => {
  it('closes a keyless socket with 4401 when no valid key arrives within the grace period', async () => {
    const ops = new OperationKeys(keys, new ConnectionRegistry(), 50);
    const socket = new FakeSocket();
    ops.acceptKeyless(socket as unknown as WebSocket);
    expect(await ops.authenticate(socket as unknown as WebSocket, { headers: { 'x-api-key': 'llmgw_wrong' } })).toBeNull();
    await sleep(80);
    expect(socket.closedWith).toBe(4401);
  });

  it('keeps it open once an operation brought a valid key, and registers it for revocation once per key', async () => {
    const connections = new ConnectionRegistry();
    const ops = new OperationKeys(keys, connections, 50);
    const socket = new FakeSocket();
    ops.acceptKeyless(socket as unknown as WebSocket);
    for (let i = 0; i < 3; i++) expect(await ops.authenticate(socket as unknown as WebSocket, { headers: { Authorization: `Bearer ${VALID}` } })).toMatchObject({ id: 'k1' });
    await sleep(80);
    expect(socket.closedWith).toBeNull();
    expect(connections.countFor('k1')).toBe(1);
    expect(connections.closeOwner('k1')).toBe(1);
    expect(socket.closedWith).toBe(4403);
  });

  it('authenticates nothing on a socket that was not accepted as keyless', async () => {
    const ops = new OperationKeys(keys, new ConnectionRegistry(), 50);
    expect(await ops.authenticate(new FakeSocket() as unknown as WebSocket, { headers: { 'x-api-key': VALID } })).toBeNull();
  });
});
