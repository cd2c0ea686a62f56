import { describe, expect, it } from 'vitest';
import { ReadAhead } from '../../src/services/generation/read-ahead.js';

type Chunk = { text: string; done?: boolean };
const options = { delta: (c: Chunk) => c.text, isFinal: (c: Chunk) => Boolean(c.done), maxChars: 1000, maxTokens: 1000 };

/** A source whose chunks are pushed by the test; `next()` calls are counted. */
function pushSource() {
  const queued: IteratorResult<Chunk>[] = [];
  const waiting: ((r: IteratorResult<Chunk>) => void)[] = [];
  let failWith: ((e: unknown) => void) | undefined;
  const source = {
    pulls: 0,
    returned: false,
    next(): Promise<IteratorResult<Chunk>> {
      source.pulls++;
      const r = queued.shift();
      if (r) return Promise.resolve(r);
      return new Promise((resolve, reject) => {
        waiting.push(resolve);
        failWith = reject;
      });
    },
    async return(): Promise<IteratorResult<Chunk>> {
      source.returned = true;
      return { done: true, value: undefined };
    },
    push(chunk: Chunk | null) {
      const r: IteratorResult<Chunk> = chunk ? { done: false, value: chunk } : { done: true, value: undefined };
      const w = waiting.shift();
      if (w) w(r);
      else queued.push(r);
    },
    fail(e: unknown) {
      failWith?.(e);
    },
  };
  return source;
}

const settle = () => new Promise((r) => setImmediate(r));

describe('ReadAhead', () => {
  it('hands over a chunk at once to a consumer that waits (no holding back the first token)', async () => {
    const src = pushSource();
    const reader = new ReadAhead(src, options);
    reader.start();
    const taken = reader.take();
    src.push({ text: 'Hello' });
    expect(await taken).toMatchObject({ text: 'Hello', tokens: 1, chunks: 1, failed: false, ended: false });
  });

  it('coalesces what arrives while the consumer is busy into one batch, and keeps the final chunk apart', async () => {
    const src = pushSource();
    const reader = new ReadAhead(src, options);
    reader.start();
    for (const t of ['a', 'b', '', 'c']) src.push({ text: t });
    src.push({ text: '', done: true });
    await settle();
    expect(reader.ready).toBe(true);
    const batch = await reader.take();
    expect(batch).toMatchObject({ text: 'abc', tokens: 3, chunks: 4, final: { text: '', done: true } });
    // Nothing is read past the final chunk.
    expect(src.pulls).toBe(5);
  });

  it('stops reading once a full batch waits, and reads on after it is taken (backpressure)', async () => {
    const src = pushSource();
    const reader = new ReadAhead(src, { ...options, maxTokens: 3 });
    reader.start();
    for (let i = 0; i < 10; i++) src.push({ text: String(i) });
    await settle();
    expect(src.pulls).toBe(3);
    expect((await reader.take()).text).toBe('012');
    await settle();
    expect(src.pulls).toBe(6);
    expect((await reader.take()).text).toBe('345');
  });

  it('reports a failure after the text read before it', async () => {
    const src = pushSource();
    const reader = new ReadAhead(src, options);
    reader.start();
    src.push({ text: 'x' });
    await settle();
    src.fail(new Error('boom'));
    await settle();
    const batch = await reader.take();
    expect(batch).toMatchObject({ text: 'x', tokens: 1, failed: true });
    expect((batch.error as Error).message).toBe('boom');
  });

  it('reports a source that ends without a final chunk', async () => {
    const src = pushSource();
    const reader = new ReadAhead(src, options);
    reader.start();
    src.push({ text: 'x' });
    src.push(null);
    await settle();
    expect(await reader.take()).toMatchObject({ text: 'x', ended: true, failed: false });
  });

  it('close() returns the source and wakes a waiting take', async () => {
    const src = pushSource();
    const reader = new ReadAhead(src, options);
    reader.start();
    const taken = reader.take();
    reader.close();
    expect(await taken).toMatchObject({ tokens: 0, ended: true });
    expect(src.returned).toBe(true);
  });
});

describe('ReadAhead.linger', () => {
  it('waits up to the given time for more chunks, and returns at once when the final chunk arrives', async () => {
    const src = pushSource();
    const reader = new ReadAhead(src, options);
    reader.start();
    src.push({ text: 'a' });
    expect((await reader.take()).text).toBe('a');

    let t = Date.now();
    setTimeout(() => src.push({ text: 'b' }), 5);
    await reader.linger(60);
    expect(Date.now() - t).toBeGreaterThanOrEqual(55);
    expect((await reader.take()).text).toBe('b');

    // "At once" against a 15 s linger: a bound a busy machine cannot miss, that a full linger would.
    t = Date.now();
    setTimeout(() => src.push({ text: '', done: true }), 5);
    await reader.linger(15_000);
    expect(Date.now() - t).toBeLessThan(10_000);
    expect((await reader.take()).final).toEqual({ text: '', done: true });
  });

  it('returns at once when the batch is full, the source failed or the reader is closed', async () => {
    const src = pushSource();
    const reader = new ReadAhead(src, { ...options, maxTokens: 2 });
    reader.start();
    src.push({ text: 'a' });
    const t = Date.now();
    setTimeout(() => src.push({ text: 'b' }), 5);
    await reader.linger(15_000);
    expect(Date.now() - t).toBeLessThan(10_000);
    expect((await reader.take()).text).toBe('ab');

    const failing = pushSource();
    const r2 = new ReadAhead(failing, options);
    r2.start();
    setTimeout(() => failing.fail(new Error('gone')), 5);
    const t2 = Date.now();
    await r2.linger(15_000);
    expect(Date.now() - t2).toBeLessThan(10_000);
    expect((await r2.take()).failed).toBe(true);

    const r3 = new ReadAhead(pushSource(), options);
    r3.start();
    setTimeout(() => r3.close(), 5);
    const t3 = Date.now();
    await r3.linger(15_000);
    expect(Date.now() - t3).toBeLessThan(10_000);
  });
});
