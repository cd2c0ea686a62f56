import net from 'node:net';
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../../src/emulator/server.js';
import { OllamaUpstream } from '../../src/services/ollama/upstream.js';

// The streamed generate/chat calls of OllamaUpstream use node:http and their own NDJSON reader
// (the other calls use the ollama client): they must see exactly what the client sees.

let emulator: Emulator;
let proxy: net.Server;
let connections = 0;
let proxyUrl = '';
const timeouts = { connectMs: 5000, stallMs: 5000 };

beforeAll(async () => {
  emulator = await startEmulator({ tokenDelayMs: 0 });
  // Counts the TCP connections made to the emulator.
  proxy = net.createServer((client) => {
    connections++;
    const upstream = net.connect(emulator.port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
});
afterAll(async () => {
  proxy?.close();
  await emulator?.close();
});

const drain = async <T>(it: AsyncIterable<T>) => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};
const strip = <T extends { created_at?: unknown; total_duration?: unknown; load_duration?: unknown; prompt_eval_duration?: unknown; eval_duration?: unknown }>(c: T) => {
  const { created_at, total_duration, load_duration, prompt_eval_duration, eval_duration, ...rest } = c;
  return rest;
};

describe('OllamaUpstream streamed calls', () => {
  it('yields what the ollama client yields, for generate and chat', async () => {
    const upstream = new OllamaUpstream(emulator.url, timeouts);
    const client = new Ollama({ host: emulator.url });
    const request = { model: 'llama3.2', prompt: 'Tell me about the sea.', options: { num_predict: 12 } };
    const ours = await drain(upstream.generateStream(request));
    const theirs = await drain(await client.generate({ ...request, stream: true }));
    expect(ours.map(strip)).toEqual(theirs.map(strip));
    expect(ours.at(-1)?.done).toBe(true);

    const chat = { model: 'llama3.2', messages: [{ role: 'user', content: 'Hello there' }] };
    const oursChat = await drain(upstream.chatStream(chat));
    const theirsChat = await drain(await client.chat({ ...chat, stream: true }));
    expect(oursChat.map(strip)).toEqual(theirsChat.map(strip));
  });

  it('takes the host forms the ollama client takes (no scheme)', async () => {
    const upstream = new OllamaUpstream(`127.0.0.1:${emulator.port}`, timeouts);
    const chunks = await drain(upstream.generateStream({ model: 'llama3.2', prompt: 'hi', options: { num_predict: 3 } }));
    expect(chunks.filter((c) => !c.done)).toHaveLength(3);
  });

  it('keeps its connection alive between complete answers, and closes the request of an answer left early', async () => {
    const upstream = new OllamaUpstream(proxyUrl, timeouts);
    const before = connections;
    for (let i = 0; i < 20; i++) await drain(upstream.generateStream({ model: 'llama3.2', prompt: `again ${i}`, options: { num_predict: 5 } }));
    // (A request can start before the previous socket is back in the pool: one more is fine, one per request is not.)
    expect(connections - before).toBeLessThanOrEqual(3);

    emulator.setTokenDelay(20);
    try {
      const requestsBefore = emulator.requests.length;
      for await (const chunk of upstream.generateStream({ model: 'llama3.2', prompt: 'a long one, left early' })) {
        if (!chunk.done) break;
      }
      const sent = emulator.requests.slice(requestsBefore).find((r) => r.path === '/api/generate')!;
      expect((await emulator.waitForOutcome(sent.id, 'client-closed', 2000)).outcome).toBe('client-closed');
    } finally {
      emulator.setTokenDelay(0);
    }
  });

  it('answers a model Ollama does not have with MODEL_NOT_FOUND', async () => {
    const upstream = new OllamaUpstream(emulator.url, timeouts);
    await expect(drain(upstream.generateStream({ model: 'no-such-model', prompt: 'x' }))).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
  });
});
