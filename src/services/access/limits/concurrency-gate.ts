import { ErrorCode, GatewayError } from '../../platform/errors.js';
import { ConcurrencyLimit } from './concurrency.js';

/**
 * Generations running at once per client address, counted inside the generation service: it
 * holds for every route (GraphQL over HTTP, SSE and websockets, /v1, the Ollama-compatible
 * routes) and every document shape (fragments, `... on Mutation`), since none of them can reach
 * a model without passing here. The per-key count is the rate limiter's `maxConcurrentStreams`.
 */
export class ConcurrencyGate {
  private readonly perIp: ConcurrencyLimit;

  constructor(maxPerIp: number) {
    this.perIp = new ConcurrencyLimit(maxPerIp);
  }

  get maxPerIp(): number {
    return this.perIp.max;
  }

  /** Counts one generation for the address; returns its (idempotent) release or throws RATE_LIMITED. */
  enter(clientIp: string | undefined): () => void {
    const release = this.perIp.acquire(clientIp ?? 'unknown');
    if (!release) throw this.refusal();
    return release;
  }

  /** Throws RATE_LIMITED when the address is at its limit now, without counting (a check before costly work). */
  check(clientIp: string | undefined): void {
    if (this.perIp.max > 0 && this.perIp.count(clientIp ?? 'unknown') >= this.perIp.max) throw this.refusal();
  }

  /** Generations the address runs now (tests and metrics). */
  running(clientIp: string): number {
    return this.perIp.count(clientIp);
  }

  private refusal(): GatewayError {
    return new GatewayError(ErrorCode.RATE_LIMITED, `This address may run ${this.perIp.max} generations at once. Retry in 1 s.`, {
      retryAfterSeconds: 1,
      limit: 'maxConcurrentStreamsPerIp',
    });
  }
}
