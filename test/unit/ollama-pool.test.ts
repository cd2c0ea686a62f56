import { describe, expect, it } from 'vitest';
import { ErrorCode, GatewayError } from '../../src/services/platform/errors.js';
import { createLogger } from '../../src/services/platform/logger.js';
import { type OllamaHost, OllamaPool } from '../../src/services/ollama/pool.js';

const unavailable = () => new GatewayError(ErrorCode.UPSTREAM_UNAVAILABLE, 'gone');
const missing = () => new GatewayError(ErrorCode.MODEL_NOT_FOUND, 'no such model');

async function drain<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** A pool whose hosts are never contacted: `stream` is given the opener. */
const poolOf = (n: number) =>
  new OllamaPool(
    Array.from({ length: n }, (_, i) => `http://127.0.0.1:${1 + i}`),
    { timeouts: { connectMs: 1000, stallMs: 1000 }, healthCheckIntervalMs: 0, log: createLogger('silent') },
  );
const live = () => new AbortController().signal;

describe('OllamaPool.stream with one host (retry before the first chunk)', () => {
  const policy = { retries: 1, delayMs: 0 };

  it('opens again after UPSTREAM_UNAVAILABLE before any chunk, up to the retry count', async () => {
    const pool = poolOf(1);
    let opened = 0;
    const source = async function* () {
      opened++;
      if (opened === 1) throw unavailable();
      yield 'a';
      yield 'b';
    };
    expect(await drain(pool.stream(pool.hosts, source, policy, live()))).toEqual(['a', 'b']);
    expect(opened).toBe(2);
    expect(pool.primary.isHealthy).toBe(true); // answered on the retry
  });

  it('gives up after the retries, and the host counts as unhealthy', async () => {
    const pool = poolOf(1);
    let opened = 0;
    const source = async function* (): AsyncGenerator<string> {
      opened++;
      throw unavailable();
    };
    await expect(drain(pool.stream(pool.hosts, source, policy, live()))).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(opened).toBe(2);
    expect(pool.primary.status()).toMatchObject({ healthy: false, error: 'gone' });
  });

  it('never retries once a chunk arrived, nor other errors, nor after an abort', async () => {
    const pool = poolOf(1);
    let opened = 0;
    const late = async function* () {
      opened++;
      yield 'a';
      throw unavailable();
    };
    await expect(drain(pool.stream(pool.hosts, late, policy, live()))).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(opened).toBe(1);

    opened = 0;
    const busy = async function* (): AsyncGenerator<string> {
      opened++;
      throw new GatewayError(ErrorCode.UPSTREAM_BUSY, 'busy');
    };
    await expect(drain(pool.stream(pool.hosts, busy, policy, live()))).rejects.toMatchObject({ code: 'UPSTREAM_BUSY' });
    expect(opened).toBe(1);

    opened = 0;
    const aborted = new AbortController();
    aborted.abort();
    const refused = async function* (): AsyncGenerator<string> {
      opened++;
      throw unavailable();
    };
    await expect(drain(pool.stream(pool.hosts, refused, policy, aborted.signal))).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(opened).toBe(1);
  });

  it('does not retry MODEL_NOT_FOUND', async () => {
    const pool = poolOf(1);
    let opened = 0;
    const source = async function* (): AsyncGenerator<string> {
      opened++;
      throw missing();
    };
    await expect(drain(pool.stream(pool.hosts, source, policy, live()))).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    expect(opened).toBe(1);
  });
});

describe('OllamaPool.stream over several hosts (failover before the first chunk)', () => {
  const noRetry = { retries: 0, delayMs: 0 };

  it('moves to the next host at once when one cannot be reached, and reports each host tried', async () => {
    const pool = poolOf(3);
    const tried: string[] = [];
    const failovers: string[] = [];
    const source = async function* (host: OllamaHost) {
      if (host !== pool.hosts[2]) throw unavailable();
      yield host.url;
    };
    const out = await drain(
      pool.stream(pool.hosts, source, { ...noRetry, onFailover: (from, to) => failovers.push(`${from.url}>${to.url}`) }, live(), (h) => void tried.push(h.url)),
    );
    expect(out).toEqual([pool.hosts[2].url]);
    expect(tried).toEqual(pool.hosts.map((h) => h.url));
    expect(failovers).toEqual([`${pool.hosts[0].url}>${pool.hosts[1].url}`, `${pool.hosts[1].url}>${pool.hosts[2].url}`]);
    expect(pool.hosts.map((h) => h.isHealthy)).toEqual([false, false, true]);
  });

  it('skips a host that lacks the model; MODEL_NOT_FOUND only when every host lacks it', async () => {
    const pool = poolOf(2);
    const second = async function* (host: OllamaHost) {
      if (host === pool.hosts[0]) throw missing();
      yield 'answer';
    };
    expect(await drain(pool.stream(pool.hosts, second, noRetry, live()))).toEqual(['answer']);
    expect(pool.hosts[0].isHealthy).toBe(true); // lacking a model says nothing about health

    const none = async function* (): AsyncGenerator<string> {
      throw missing();
    };
    await expect(drain(pool.stream(pool.hosts, none, { retries: 3, delayMs: 0 }, live()))).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
  });

  it('prefers UPSTREAM_UNAVAILABLE over MODEL_NOT_FOUND when one host lacks the model and the other is down', async () => {
    const pool = poolOf(2);
    const source = async function* (host: OllamaHost): AsyncGenerator<string> {
      throw host === pool.hosts[0] ? missing() : unavailable();
    };
    await expect(drain(pool.stream(pool.hosts, source, noRetry, live()))).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
  });

  it('closes the host stream when the consumer stops early', async () => {
    const pool = poolOf(2);
    let closed = false;
    const source = async function* () {
      try {
        yield 1;
        yield 2;
        yield 3;
      } finally {
        closed = true;
      }
    };
    const it = pool.stream([pool.hosts[1]], source, noRetry, live());
    expect(await it.next()).toEqual({ done: false, value: 1 });
    expect(await it.next()).toEqual({ done: false, value: 2 });
    await it.return(undefined);
    expect(closed).toBe(true);
  });

  it('counts a request open on a host until released once', () => {
    const pool = poolOf(2);
    const release = pool.hosts[1].open();
    expect(pool.hosts.map((h) => h.activeRequests)).toEqual([0, 1]);
    release();
    release();
    expect(pool.hosts.map((h) => h.activeRequests)).toEqual([0, 0]);
  });

  it('names hosts by their configured URL and refuses others with BAD_USER_INPUT', () => {
    const pool = poolOf(2);
    expect(pool.host(`${pool.hosts[1].url}/`)).toBe(pool.hosts[1]);
    expect(() => pool.host('http://elsewhere:11434')).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT' }));
  });
});
